"""Prepare a local Milvus standalone server (run with .venv-milvus/bin/python, where the `milvus`
wheel lives): extract its binary once into BIN_DIR, write a config with free loopback ports into
DATA_DIR, and print how to start it as JSON ({"cmd", "cwd", "env", "port", "health_port"}).

It does not start the server: the caller does, and so owns the process and its pid (the wheel's
own wrapper can leave the `milvus` child running when the wrapper stops). Fresh rows are searched
exactly (`queryNode.segcore.interimIndex.enableIndex=false`): the interim index on growing
segments gave recall 0.64 on fresh rows, where tests expect what was just written.

    .venv-milvus/bin/python scripts/milvus_prepare.py --data-dir DIR --bin-dir .venv-milvus/milvus-bin
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import milvus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--bin-dir", required=True)
    args = parser.parse_args()
    data_dir, bin_base = os.path.abspath(args.data_dir), os.path.abspath(args.bin_dir)
    milvus._initialize_data_files(bin_base)  # idempotent: skips files already extracted
    config = milvus.MilvusServerConfig(data_dir=data_dir)
    config.set("queryNode.segcore.interimIndex.enableIndex", "false")
    config.resolve()  # free ports from Milvus's defaults up, config written into DATA_DIR/configs
    health_port, sock = config.resolve_port(9091)
    sock.close()
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
