"""Unit tests of the CLI without services: tables cut to the width, JSON, argument parsing, the
command registration hook, usage errors. The CLI against real services is in test_client.py."""
import json

import pytest

from client import cli, render
from client.types import Hit, Product, SearchResult, SearchTiming

LONG_TITLE = "Oakhaven Wooden Desk Chair with Cushioned Seat for Study Table, Solid Rubberwood " * 3


def _hits():
    return [Hit(Product(id="a", title=LONG_TITLE, brand="Oakhaven", price=149.0,
                        categories=("Furniture", "Chairs"), category="Chairs"), 0.81234, 1),
            Hit(Product(id="b", title="Stool", brand="A Very Long Brand Name Incorporated",
                        price=None, category="Stools"), 0.5, 2)]


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_table_fits_the_width_and_cuts_the_title(width):
    table = render.hits_table(_hits(), width=width)
    lines = table.splitlines()
    assert lines[0].split() == ["#", "title", "brand", "category", "price", "score"]
    assert all(len(line) <= width for line in lines), table
    assert render.ELLIPSIS in lines[2]  # the long title was cut
    assert "Stool" in lines[3] and "149.00" in lines[2] and "0.8123" in lines[2]
    assert lines[3].split()[-2:] == ["-", "0.5000"]  # unknown price


def test_brand_and_category_give_way_before_the_title_gets_short():
    """A catalog listing: the 36-character ids took the room, and titles were cut to 14."""
    products = [Product(id="0e8bf925-161b-5ce7-8abd-50a67c771945", title=LONG_TITLE,
                        brand="Kestrel Office Co", category="Home Office Desk Chairs")]
    lines = render.products_table(products, width=100).splitlines()
    assert all(len(line) <= 100 for line in lines)
    title = lines[2][38:].split("  ")[0]
    assert len(title) == 30 and title.endswith(render.ELLIPSIS)
    assert "Kestrel O" in lines[2] and "Home Offi" in lines[2]  # narrowed, still there
    wide = render.products_table(products, width=200).splitlines()[2]
    assert "Kestrel Office Co" in wide  # room enough: nothing squeezed


def test_table_uses_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "70")
    assert max(map(len, render.hits_table(_hits()).splitlines())) <= 70


def test_search_text_and_json():
    result = SearchResult(hits=tuple(_hits()), timing=SearchTiming(1000, 200, 1500))
    text = render.search_text(result, "'chair'", width=100)
    assert text.startswith("2 hits for 'chair' (1.5 ms")
    assert render.search_text(SearchResult(hits=()), "'x'") == "no hits for 'x'"
    data = json.loads(render.to_json(result))
    assert [h["product"]["id"] for h in data["hits"]] == ["a", "b"]
    assert data["hits"][0]["product"]["categories"] == ["Furniture", "Chairs"]
    assert data["hits"][1]["product"]["price"] is None
    assert data["timing"] == {"embed_us": 1000, "search_us": 200, "total_us": 1500}


def test_cut():
    assert render.cut("a  b\nc", 10) == "a b c"
    assert render.cut("abcdef", 4) == "abc" + render.ELLIPSIS


def test_global_options_before_or_after_the_command_and_from_the_environment(monkeypatch):
    monkeypatch.setenv("RECSYS_INDEX", "envhost:1")
    monkeypatch.setenv("RECSYS_TIMEOUT", "2.5")
    parser = cli.build_parser()
    args = parser.parse_args(["search", "desk"])
    assert (args.index, args.embedder, args.timeout, args.json) == (
        "envhost:1", "localhost:50051", 2.5, False)
    args = parser.parse_args(["--index", "a:1", "--json", "search", "desk", "-k", "3"])
    assert (args.index, args.json, args.k, args.query) == ("a:1", True, 3, "desk")
    args = parser.parse_args(["search", "desk", "--index", "b:2", "--json", "--mode", "hybrid",
                              "--category", "Desks", "--category", "Tables", "--max-price", "99"])
    assert (args.index, args.json, args.mode, args.category, args.max_price) == (
        "b:2", True, "hybrid", ["Desks", "Tables"], 99.0)


def register(add):
    """A command module as client/evaluate.py is: registers `hello`."""
    p = add("hello", help="says hello", run=lambda args, client: print(f"hello {args.name}") or 3)
    p.add_argument("name")


def test_command_modules_register_their_commands(capsys):
    parser = cli.build_parser((".commands", "tests.test_cli_render"))
    args = parser.parse_args(["hello", "you", "--index", "h:9"])
    assert args.index == "h:9"
    assert args.run(args, None) == 3
    assert capsys.readouterr().out == "hello you\n"
    assert parser.parse_args(["stats"]).run.__name__ == "run_stats"


@pytest.mark.parametrize("argv, fragment", [
    (["search", "desk", "-k", "0"], "argument -k: must be at least 1"),
    (["search", "desk", "--mode", "fuzzy"], "invalid choice: 'fuzzy'"),
    (["search", "desk", "--mode", "hybrid", "--alpha", "1.5"], "must be from 0 to 1"),
    (["search", "desk", "--mode", "hybrid", "--fusion", "linear"], "invalid choice: 'linear'"),
    (["search"], "required: query"),
    (["--timeout", "-1", "stats"], "must be a positive number"),
    (["nope"], "invalid choice: 'nope'"),
    (["--tls-client-cert", __file__, "stats"], "needs both --tls-client-cert and --tls-client-key"),
    (["--tls-client-key", __file__, "stats"], "needs both"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and err.startswith("recsys"), err


@pytest.mark.parametrize("argv, fragment", [
    (["--token-file", "/nonexistent/token", "stats"], "cannot read the token file"),
    (["--tls-ca", __file__, "stats"], "is not a PEM file"),
])
def test_unusable_tls_or_token_settings_are_one_line_errors(argv, fragment, capsys):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("recsys: error: ") and fragment in err and err.count("\n") == 1, err


def test_hybrid_options_need_hybrid_mode(capsys):
    assert cli.main(["--index", "127.0.0.1:1", "search", "desk", "--alpha", "0.3"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("recsys: error: --alpha applies to --mode hybrid only"), err


def test_version_names_the_client_and_its_contract(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == "recsys-client 1.1.0 (contract recsys.v1)\n"
