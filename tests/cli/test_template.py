"""`kumactl apply -v`: mustache rendering as Kuma's hoisie/mustache does it."""

from __future__ import annotations

import pytest

from kuma.cli.template import TemplateError, build_context, render


def ctx(*pairs: str) -> dict[str, object]:
    return build_context(tuple(p.split("=", 1)) for p in pairs)  # type: ignore[misc]


def test_plain_and_spaced_variables() -> None:
    # Kuma's apply-dataplane-template.yaml and apply-mesh-template.yaml
    assert render('address: "{{ address }}"', ctx("address=2.2.2.2")) == 'address: "2.2.2.2"'
    assert render("name: {{name}}\ntype: {{type}}", ctx("name=meshinit", "type=Mesh")) == (
        "name: meshinit\ntype: Mesh"
    )


def test_dotted_names_nest() -> None:
    # Kuma's apply-dataplane-template-dots.yaml
    text = 'address: "{{ var.with.dots.in.the.name }}"'
    assert render(text, ctx("var.with.dots.in.the.name=2.2.2.2")) == 'address: "2.2.2.2"'


def test_variables_sharing_a_prefix_are_all_kept() -> None:
    assert render("{{a.b}}-{{a.c}}", ctx("a.b=1", "a.c=2")) == "1-2"


def test_value_and_prefix_of_the_same_name_is_an_error() -> None:
    with pytest.raises(TemplateError, match='"a" is set to a value'):
        ctx("a=1", "a.b=2")
    with pytest.raises(TemplateError, match="also the prefix"):
        ctx("a.b=2", "a=1")


def test_missing_variables_render_empty() -> None:
    assert render("x={{missing}};y={{a.missing}}", ctx("a.b=1")) == "x=;y="


def test_values_are_html_escaped_like_go_unless_triple_braced() -> None:
    c = ctx("""v=<a href="x">'&'</a>""")
    assert render("{{v}}", c) == "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    assert render("{{{v}}}", c) == """<a href="x">'&'</a>"""
    assert render("{{& v}}", c) == """<a href="x">'&'</a>"""


def test_sections_comments_and_delimiters() -> None:
    c = ctx("tls.cert=/c.pem", "on=yes")
    assert render("{{#tls}}\ncert: {{cert}}\n{{/tls}}", c) == "cert: /c.pem\n"
    assert render("{{^tls}}none{{/tls}}{{^nope}}none{{/nope}}", c) == "none"
    assert render("a{{! a comment }}b", c) == "ab"
    assert render("{{=<% %>=}}<% on %> {{on}}", c) == "yes {{on}}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: {{ b", "line 1: unmatched open tag"),
        ("a\nb: {{ }}", "line 2: empty tag"),
        ("{{#a}}\nx", "line 1: Section a has no closing tag"),
        ("{{#a}}x{{/b}}", "line 1: interleaved closing tag: b"),
        ("x{{/b}}", "line 1: unmatched close tag"),
        ("{{> other.yaml}}", "partials"),
    ],
)
def test_malformed_templates_are_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(text, {})
