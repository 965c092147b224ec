"""The built-book checker (tests/book_html.py) finds what it should on hand-made pages."""

from book_html import page_problems

CITE = '<div class="cellrepro-cite">Cite this chapter</div>'
LOCAL_MATHJAX = '<script defer src="../_static/mathjax/tex-chtml.js"></script>'


def page(body: str, head: str = LOCAL_MATHJAX) -> str:
    return f"<html><head>{head}</head><body><main>{body}</main></body></html>"


def test_a_clean_page_passes():
    body = (CITE + '<span class="math notranslate nohighlight">\\(x^2\\)</span>'
            '<figure><img alt="Five slices of a z-stack" src="a.png"><figcaption><p>Fig. 1 A stack.</p></figcaption></figure>'
            '<table class="cellrepro-verdicts"><tr><td>[+0.010, +0.030]</td><td>holds</td></tr></table>'
            "<p>Financial nanometres are fine.</p>")
    assert page_problems(page(body), "p") == []


def test_each_problem_is_named():
    found = page_problems(page(
        "<p>raw \\(x\\) math</p>"
        '<div class="cell_output"><img alt="../_images/0123456789abcdef0123.png" src="x.png"></div>'
        "<figure><img alt='ok' src='b.png'></figure>"
        '<table class="cellrepro-verdicts"><tr><td>[+nan, +nan]</td></tr></table>',
        head='<script src="https://cdn.example.org/mathjax/tex-chtml.js"></script>'), "p")
    text = "\n".join(found)
    for expected in ("no cite block", "MathJax loaded from the network", "raw math", "not a captioned figure",
                     "without readable alt text", "a figure without a caption", "'nan' in a verdict table"):
        assert expected in text, expected


def test_code_blocks_may_show_latex():
    body = CITE + "<pre>$\\(a\\)$</pre><code>\\[b\\]</code>"
    assert page_problems(page(body), "p") == []
