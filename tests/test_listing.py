import inspect

from companion import bert, listing


def test_show_returns_the_tested_source_itself():
    code = listing.show(bert.mask_tokens)
    assert code.data == inspect.getsource(bert.mask_tokens)
    assert code.data.startswith("def mask_tokens(") and "0.8" in code.data
    assert code.language == "python" and "mask_tokens</span>" in code._repr_html_()  # highlighted as Python in a notebook and the book
