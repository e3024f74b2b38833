"""Prepare a local Milvus standalone server (run with .venv-milvus/bin/python, where the `milvus`
wheel lives): extract its binary once into BIN_DIR, write a config with free loopback ports into
DATA_DIR, and print how to start it as JSON ({"cmd", "cwd", "env", "port", "health_port"}).

It does not start the server: the caller does, and so owns the process and its pid (the wheel's
own wrapper can leave the `milvus` child running when the wrapper stops). Its embedded etcd gets
free ports too (by default it takes 2379/2380, so a second server on the machine would fail).
Fresh rows are searched
exactly (`queryNode.segcore.interimIndex.enableIndex=false`): the interim index on growing
segments gave recall 0.64 on fresh rows, where tests expect what was just written. Sessions
live 10 s instead of Milvus's default 30 s (`common.session.ttl`): after a SIGKILL, Milvus
reloads its collections only once the dead process's session has expired, so a test that kills
and restarts the server waits ~5 s for its collections instead of ~25 s.

    .venv-milvus/bin/python scripts/milvus_prepare.py --data-dir DIR --bin-dir .venv-milvus/milvus-bin
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import milvus


def _free_port(config, start: int) -> int:
    port, sock = config.resolve_port(start)
    sock.close()
    return port


def _embedded_etcd_on_free_ports(config, data_dir: str) -> None:
    """An etcd config with free client and peer ports, named in milvus.yaml (etcd.config.path)."""
    client, peer = _free_port(config, 2479), _free_port(config, 2580)
    if peer == client:
        peer = _free_port(config, client + 1)
    etcd_yaml = os.path.join(data_dir, "configs", "etcd.yaml")
    with open(etcd_yaml, "w", encoding="utf-8") as f:
        f.write(f"name: recsys-test\n"
                f"listen-client-urls: http://127.0.0.1:{client}\n"
                f"advertise-client-urls: http://127.0.0.1:{client}\n"
                f"listen-peer-urls: http://127.0.0.1:{peer}\n"
                f"initial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
                f"initial-cluster: recsys-test=http://127.0.0.1:{peer}\n")
    milvus_yaml = os.path.join(data_dir, "configs", "milvus.yaml")
    with open(milvus_yaml, encoding="utf-8") as f:
        text = f.read()
    marker = "  use:\n    embed: true"
    if marker not in text:
        raise SystemExit(f"{milvus_yaml}: no embedded etcd section to configure")
    text = text.replace(marker, f"  config:\n    path: {etcd_yaml}\n{marker}", 1)
    text = text.replace("localhost:2379", f"localhost:{client}", 1)
    with open(milvus_yaml, "w", encoding="utf-8") as f:
        f.write(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--bin-dir", required=True)
    args = parser.parse_args()
    data_dir, bin_base = os.path.abspath(args.data_dir), os.path.abspath(args.bin_dir)
    milvus._initialize_data_files(bin_base)  # idempotent: skips files already extracted
    config = milvus.MilvusServerConfig(data_dir=data_dir)
    config.set("queryNode.segcore.interimIndex.enableIndex", "false")
    config.set("common.session.ttl", "10")
    config.resolve()  # free ports from Milvus's defaults up, config written into DATA_DIR/configs
    health_port = _free_port(config, 9091)
    _embedded_etcd_on_free_ports(config, data_dir)
    tmp = os.path.join(data_dir, "tmp")  # milvus writes server_id files into its temp dir
    os.makedirs(tmp, exist_ok=True)
    bin_dir = os.path.join(bin_base, "bin")
    env = {"DEPLOY_MODE": "STANDALONE", "METRICS_PORT": str(health_port),
           "MILVUS_RUN_DIR": os.path.join(data_dir, "run"), "TMPDIR": tmp,
           "LD_LIBRARY_PATH": bin_dir}
    json.dump({"cmd": [os.path.join(bin_dir, "milvus"), "run", "standalone"], "cwd": data_dir,
               "env": env, "port": int(config.get("proxy_port")), "health_port": health_port},
              sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
