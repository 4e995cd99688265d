import pytest
import yaml

from customer_segmentation.core.errors import ConfigError
from customer_segmentation.ingest.source_profiles import TRANSACTIONS, load_profile, parse_profile


def test_builtin_uci_profile():
    profile = load_profile("uci")
    assert profile.header and profile.delimiter == "," and profile.encoding == "utf-8"
    assert profile.key == tuple(c for c in TRANSACTIONS.columns if profile.source_for(c)), "the whole line"
    assert profile.source_for("customer_id") == "CustomerID"
    assert profile.source_columns[0] == "InvoiceNo"


def test_profile_from_file_with_aliases(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump({
        "name": "shop", "delimiter": "whitespace", "header": False,
        "timestamp_formats": "dd/MM/yyyy",
        "columns": {"day": "invoice_date", "client": "customer_id", "qty": "quantity", "total": "line_amount",
                    "note": None},
    }, sort_keys=False))
    profile = load_profile(str(path))
    assert profile.delimiter == "whitespace" and not profile.header
    assert profile.source_columns == ("day", "client", "qty", "total", "note")
    assert profile.source_for("invoice_no") is None
    assert profile.timestamp_formats == ("dd/MM/yyyy",)
    assert profile.key is None, "no line identity unless the profile states one"


@pytest.mark.parametrize("document, message", [
    ({"columns": {"a": "quantity"}, "delimter": ","}, "unknown key 'delimter'"),
    ({"columns": {"a": "quantity", "b": "invoice_date", "c": "customer_id"}}, "unit_price or line_amount"),
    ({"columns": {"a": "invoice_date", "b": "customer_id", "c": "unit_price"}}, "quantity"),
    ({"columns": {"a": "quantity", "b": "colour"}}, "unknown canonical column 'colour'"),
    ({"columns": {"a": "quantity", "b": "quantity"}}, "mapped twice"),
    ({"columns": {"a": "quantity"}, "delimiter": ";;"}, "one character"),
    ({"columns": {"a": "quantity"}, "header": "yes"}, "true or false"),
    ({"columns": []}, "columns must map"),
    (["not", "a", "mapping"], "YAML mapping"),
    ({**{"columns": {"a": "quantity", "b": "invoice_date", "c": "customer_id", "d": "line_amount"}},
      "encoding": "ebcdic"}, "encoding 'ebcdic' is not one of latin-1, utf-16be, utf-16le, utf-8, windows-1252"),
    ({**{"columns": {"a": "quantity", "b": "invoice_date", "c": "customer_id", "d": "line_amount"}},
      "key": ["invoice_no"]}, "key column 'invoice_no' is not mapped"),
])
def test_invalid_profiles_are_clear_errors(document, message):
    with pytest.raises(ConfigError) as error:
        parse_profile(document, TRANSACTIONS, "test.yaml")
    assert error.value.setting == "source_profile"
    assert message in str(error.value)


def test_unknown_profile_name():
    with pytest.raises(ConfigError, match="neither a built-in profile"):
        load_profile("no_such_profile")
