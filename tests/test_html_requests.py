"""HTML follow/items objects: rules validated by path, and the links and requests (POST forms
driven by onclick, GET templates) that extract() builds from a page's elements."""

import copy
import pickle
import time
from decimal import Decimal
from urllib.parse import quote_plus

import pytest
from selectolax.lexbor import LexborHTMLParser

from crawls.demo.data import DEMO_RULES, BoardConfig
from crawls.demo.site import render_site
from crawls.engine import html_requests, sandbox
from crawls.engine.extract import extract
from crawls.engine.link_rules import LinkRule, RequestTemplate
from crawls.engine.request import FORM, JSON, Request
from crawls.engine.rules import RulesError, rules_dump, rules_parse

BOARD = "https://www.example.go.kr/egov/notice/list.do"
VIEW = "https://www.example.go.kr/egov/notice/view.do"

EGOV_RULES = {
    "follow": [
        {
            "css": "a[onclick*=fn_egov_select_noticeList]",
            "attr": "onclick",
            "regex": r"fn_egov_select_noticeList\((\d+)\)",
            "request": {"from_form": "form[name=listForm]", "form": {"pageIndex": "{1}"}},
        }
    ],
    "items": [
        {
            "css": "a[onclick*=fn_egov_inqire_notice]",
            "attr": "onclick",
            "regex": r"fn_egov_inqire_notice\('([^']+)'\)",
            "request": {
                "method": "POST",
                "url": "view.do",
                "from_form": "form[name=viewForm]",
                "form": {"nttId": "{1}"},
            },
        }
    ],
    "fields": {"title": "h1"},
}

EGOV_LISTING = """<html><body>
<form name="listForm" action="/egov/notice/list.do" method="post">
  <input type="hidden" name="pageIndex" value="1">
  <input type="hidden" name="bbsId" value="BBSMSTR_000000000001">
  <input type="text" name="searchWrd" value="">
</form>
<form name="viewForm" action="/egov/notice/view.do" method="post">
  <input type="hidden" name="bbsId" value="BBSMSTR_000000000001">
  <input type="hidden" name="nttId" value="">
</form>
<table>
 <tr><td><a href="#" onclick="fn_egov_inqire_notice('123'); return false;">공고 123</a></td></tr>
 <tr><td><a href="#" onclick="javascript:fn_egov_inqire_notice('124');">공고 124</a></td></tr>
 <tr><td><a href="#" onclick="fn_egov_inqire_notice('123'); return false;">again</a></td></tr>
 <tr><td><a href="#" onclick="alert('no notice')">other</a></td></tr>
</table>
<div class="paging"><a href="#" onclick="fn_egov_select_noticeList(1); return false;">1</a>
<a href="#" onclick="fn_egov_select_noticeList(2); return false;">2</a></div>
</body></html>"""


def errors_of(data: object) -> dict[str, str]:
    with pytest.raises(RulesError) as caught:
        rules_parse(data)
    return caught.value.errors


def items_entry(**changes: object) -> dict:
    entry = copy.deepcopy(EGOV_RULES["items"][0])
    entry.update(changes)
    return {"items": [entry]}


def with_request(**changes: object) -> dict:
    entry = copy.deepcopy(EGOV_RULES["items"][0])
    entry["request"].update(changes)
    return {"items": [entry]}


# --- rules -----------------------------------------------------------------------------------


def test_egov_rules_parse_into_link_rules_that_round_trip_hash_and_pickle():
    rules = rules_parse(EGOV_RULES)

    entry = rules.items[0]
    assert entry == LinkRule(
        css="a[onclick*=fn_egov_inqire_notice]",
        attr="onclick",
        regex=entry.regex,
        request=RequestTemplate(
            method="POST",
            url="view.do",
            from_form="form[name=viewForm]",
            form=(("nttId", "{1}"),),
        ),
    )
    assert entry.regex is not None
    assert entry.regex.groups == 1
    assert rules.follow[0].request.method is None  # the form's own method
    dumped = rules_dump(rules)
    assert dumped["items"][0]["request"] == {
        "method": "POST",
        "url": "view.do",
        "from_form": "form[name=viewForm]",
        "form": {"nttId": "{1}"},
        "query": {},
        "json": None,
        "headers": {},
    }
    assert rules_parse(dumped) == rules
    assert rules_dump(rules_parse(dumped)) == dumped
    assert hash(rules) == hash(rules_parse(copy.deepcopy(EGOV_RULES)))
    assert pickle.loads(pickle.dumps(rules)) == rules  # noqa: S301 - our own bytes


def test_plain_selectors_and_objects_mix_and_objects_have_defaults():
    rules = rules_parse({"follow": ["nav a", {"css": "tr[data-id]"}]})

    assert rules.follow == ("nav a", LinkRule(css="tr[data-id]"))
    assert rules_dump(rules)["follow"] == [
        "nav a",
        {"css": "tr[data-id]", "attr": "href", "regex": None, "request": None},
    ]


def test_demo_rules_parse_and_dump_as_before():
    rules = rules_parse(DEMO_RULES)

    assert rules.follow == ("nav.pagination a",)
    assert rules.items == ("table.notices td.title a",)
    dumped = rules_dump(rules)
    assert dumped["follow"] == DEMO_RULES["follow"]
    assert dumped["items"] == DEMO_RULES["items"]
    assert all("map" not in spec for spec in dumped["fields"].values())


LONG = "x" * 1001


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        ({"items": [{"attr": "onclick"}]}, "items[0].css", "expected a non-empty CSS selector"),
        ({"items": [{"css": "a["}]}, "items[0].css", "invalid CSS selector 'a['"),
        (items_entry(bogus=1), "items[0].bogus", "unknown key 'bogus'; expected one of: css"),
        (items_entry(attr="on click"), "items[0].attr", "attr must be an attribute name"),
        (items_entry(attr=5), "items[0].attr", "not a number"),
        (items_entry(regex="("), "items[0].regex", "regex '(' does not compile"),
        (items_entry(regex="a(?=b)"), "items[0].regex", "lookahead (?=...) is not supported"),
        (items_entry(regex="(a)" * 10), "items[0].regex", "regex has 10 groups; at most 9"),
        (items_entry(regex=""), "items[0].regex", "must be a non-empty regular expression"),
        (items_entry(request="view.do"), "items[0].request", "request must be an object"),
        (with_request(verb="POST"), "items[0].request.verb", "unknown key 'verb'"),
        (with_request(method="PUT"), "items[0].request.method", "GET or POST, not 'PUT'"),
        (with_request(url=5), "items[0].request.url", "url must be a URL template"),
        (with_request(url="/n/{2}"), "items[0].request.url", "{2} needs a regex with 2 groups"),
        (with_request(url="/n/{page}"), "items[0].request.url", "unknown placeholder {page}"),
        (with_request(url=LONG), "items[0].request.url", "template is 1001 characters long"),
        (with_request(from_form="form["), "items[0].request.from_form", "invalid CSS selector"),
        (with_request(from_form=""), "items[0].request.from_form", "non-empty CSS selector"),
        (with_request(form=["nttId"]), "items[0].request.form", "expected an object of names"),
        (with_request(form={"nttId": 1}), "items[0].request.form.nttId", "not a number"),
        (
            with_request(form={f"f{i}": "x" for i in range(51)}),
            "items[0].request.form",
            "has 51 entries; at most 50 are allowed",
        ),
        (with_request(query={"q": "{3}"}), "items[0].request.query.q", "the regex has only 1"),
        (
            with_request(headers={"Host": "evil.test"}),
            "items[0].request.headers.Host",
            "Host is set by the crawler, not by rules",
        ),
        (
            with_request(headers={"cookie": "a=b"}),
            "items[0].request.headers.cookie",
            "cookie is set by the crawler",
        ),
        (
            with_request(headers={"Content-Length": "1"}),
            "items[0].request.headers.Content-Length",
            "set by the crawler",
        ),
        (
            with_request(headers={"bad name": "x"}),
            "items[0].request.headers.bad name",
            "is not a header name",
        ),
        (
            with_request(headers={"X-A": "a\r\nHost: evil"}),
            "items[0].request.headers.X-A",
            "header values cannot hold line breaks",
        ),
        (
            with_request(json={"id": "{1}"}),
            "items[0].request.json",
            "either json or form/from_form",
        ),
        (
            with_request(json={"a": {"b": ["{4}"]}}, form=None, from_form=None),
            "items[0].request.json.a.b[0]",
            "{4} needs a regex with 4 groups",
        ),
        (
            with_request(json={"id": "{1}"}, form=None, from_form=None, method="GET"),
            "items[0].request.json",
            "a GET request has no body",
        ),
        (
            with_request(json=[[[[[[[[[["{1}"]]]]]]]]]], form=None, from_form=None),
            "items[0].request.json[0][0][0][0][0][0][0][0][0]",
            "json nests deeper than 8 levels",
        ),
        (
            {"follow": [{"css": "a", "request": {"url": "/n/{1}"}}]},
            "follow[0].request.url",
            "{1} needs a regex with 1 groups; the regex has no groups",
        ),
        (
            {"fields": {"title": {"css": "h1", "map": ["a"]}}},
            "fields.title.map",
            "map must be an object of texts to replacements",
        ),
        (
            {"fields": {"title": "h1", "status": {"css": "td", "map": {"공고중": 1}}}},
            "fields.status.map.공고중",
            "expected the replacement text, not a number",
        ),
        (
            {"fields": {"title": "h1", "status": {"css": "td", "map": {"a": LONG}}}},
            "fields.status.map.a",
            "texts in a map are at most 1000 characters",
        ),
        (
            {
                "fields": {
                    "title": "h1",
                    "status": {"css": "td", "map": {str(i): "" for i in range(51)}},
                }
            },
            "fields.status.map",
            "map has 51 entries; at most 50 are allowed",
        ),
    ],
)
def test_link_object_problems_are_reported_at_their_path(data, path, expected):
    errors = errors_of(data)

    assert path in errors, errors
    assert expected in errors[path]


def test_every_problem_of_an_entry_is_reported_together():
    errors = errors_of(
        {
            "follow": [
                "nav a",
                {"css": "a", "regex": "(x)", "request": {"method": "PUT", "url": "/{2}"}},
            ]
        }
    )

    assert set(errors) == {"follow[1].request.method", "follow[1].request.url"}


def test_a_field_map_is_kept_with_its_keys_whitespace_collapsed():
    rules = rules_parse(
        {"fields": {"title": "h1", "status": {"css": "td", "map": {" 공고  중 ": "active"}}}}
    )

    assert rules.fields["status"].map == (("공고 중", "active"),)
    assert rules_dump(rules)["fields"]["status"]["map"] == {"공고 중": "active"}
    assert rules_parse(rules_dump(rules)) == rules


# --- building requests -----------------------------------------------------------------------


def test_egov_listing_gives_the_exact_post_requests_deduplicated_in_order():
    page = extract(EGOV_LISTING, url=BOARD, rules=rules_parse(EGOV_RULES), want_fields=False)

    assert page.item_requests == [
        Request(VIEW, "POST", "bbsId=BBSMSTR_000000000001&nttId=123", FORM),
        Request(VIEW, "POST", "bbsId=BBSMSTR_000000000001&nttId=124", FORM),
    ]
    assert page.requests == [
        Request(BOARD, "POST", f"pageIndex={n}&bbsId=BBSMSTR_000000000001&searchWrd=", FORM)
        for n in (1, 2)
    ]
    assert (page.follow, page.items, page.errors, page.timeout) == ([], [], {}, None)


def test_from_form_submits_what_a_browser_would():
    html = """<form id=f action="search.do?old=1" method="get">
      <input type=hidden name=h value=1><input name=t value="two words"><input name=empty>
      <input type=checkbox name=c value=on1 checked><input type=checkbox name=c value=off>
      <input type=checkbox name=c value=on2 checked><input type=checkbox name=bare checked>
      <input type=radio name=r value=a><input type=radio name=r value=b checked>
      <select name=s><option value=x>X</option><option value=y selected>Y</option></select>
      <select name=first><option>Alpha</option><option>Beta</option></select>
      <select name=m multiple><option value=1 selected>1</option><option value=2>2</option>
        <option selected>three</option></select>
      <select name=none multiple><option value=1>1</option></select>
      <textarea name=ta>line</textarea>
      <input type=submit name=go value=Go><input type=button name=b value=B>
      <input type=image name=img><input type=reset name=rs><input type=file name=up>
      <input name=off value=1 disabled><input value=noname>
      <input type=checkbox name=blank value="" checked>
      <select name=d><option value=1 selected disabled>1</option></select>
      <fieldset disabled><legend><input name=inlegend value=1></legend>
        <input name=infieldset value=1></fieldset>
    </form><a class=go data-id="7">go</a>"""
    rules = rules_parse(
        {
            "items": [
                {
                    "css": "a.go",
                    "attr": "data-id",
                    "request": {"from_form": "#f", "form": {"t": "{0}", "added": "new"}},
                }
            ]
        }
    )

    page = extract(html, url="https://b.example/board/list.do", rules=rules)

    # A plain GET is a link: the form's fields replace the action's query, in canonical order.
    assert page.items == [
        "https://b.example/board/search.do?added=new&bare=on&blank=&c=on1&c=on2&empty="
        "&first=Alpha&h=1&inlegend=1&m=1&m=three&r=b&s=y&t=7&ta=line"
    ]
    assert page.item_requests == []


def test_forms_submit_in_the_pages_charset_like_browsers():
    html = """<html><head><meta charset="euc-kr"></head><body>
      <form name=viewForm method=post action=view.do><input type=hidden name=q value="공고 똠">
      <input type=hidden name=e value="&#128512;"></form>
      <a onclick="fn_egov_inqire_notice('9')">x</a></body></html>""".encode("cp949")

    page = extract(html, url=BOARD, rules=rules_parse(EGOV_RULES), want_fields=False)

    # CP949 bytes for the Korean, and a character reference for what CP949 cannot write.
    assert [built.body for built in page.item_requests] == [
        f"q={quote_plus('공고 똠', encoding='cp949')}&e=%26%23128512%3B&nttId=9"
    ]
    assert quote_plus("공고 똠", encoding="cp949") == "%B0%F8%B0%ED+%8Cc"


def test_a_post_form_keeps_repeated_names_and_overrides_in_place():
    html = """<form method=post action=/save><input type=hidden name=a value=1>
      <input type=checkbox name=c value=x checked><input type=checkbox name=c value=y checked>
      <input type=hidden name=z value=9></form><span class=k title="k-5">k</span>"""
    rules = rules_parse(
        {
            "follow": [
                {
                    "css": "span.k",
                    "attr": "title",
                    "regex": r"k-(\d+)",
                    "request": {"from_form": "form", "form": {"a": "{1}"}},
                }
            ]
        }
    )

    page = extract(html, url="https://b.example/x/list", rules=rules)

    assert page.requests == [Request("https://b.example/save", "POST", "a=5&c=x&c=y&z=9", FORM)]


def test_data_attributes_and_get_templates_give_canonical_links():
    html = """<table><tr data-ntt-id="55"><td>a</td></tr><tr data-ntt-id="56"></tr>
      <tr data-ntt-id=""></tr><tr></tr></table>"""
    rules = rules_parse(
        {
            "items": [
                {
                    "css": "tr[data-ntt-id]",
                    "attr": "data-ntt-id",
                    "request": {"url": "view.do?utm_source=x&b={0}", "query": {"a": "{0}"}},
                }
            ],
            "ignore_params": ["utm_source"],
        }
    )

    page = extract(html, url=BOARD, rules=rules)

    assert page.items == [f"{VIEW}?a=55&b=55", f"{VIEW}?a=56&b=56"]
    assert page.item_requests == []


def test_get_templates_with_headers_are_requests_and_values_are_url_encoded():
    html = """<a class=n data-ref="가 1&2">x</a><a class=n data-ref="a\r\nHost: evil">y</a>"""
    rules = rules_parse(
        {
            "items": [
                {
                    "css": "a.n",
                    "attr": "data-ref",
                    "request": {
                        "url": "/n/{0}",
                        "headers": {"X-Requested-With": "XMLHttpRequest", "X-Ref": "{0}"},
                    },
                }
            ]
        }
    )

    page = extract(html, url=BOARD, rules=rules)

    assert page.items == []
    assert page.item_requests == [
        Request(
            "https://www.example.go.kr/n/%EA%B0%80%201&2",  # & needs no escape in a path
            headers=(("X-Requested-With", "XMLHttpRequest"), ("X-Ref", "가 1&2")),
        ),
        Request(
            "https://www.example.go.kr/n/a%0AHost:%20evil",  # HTML reads \r\n as \n
            headers=(("X-Requested-With", "XMLHttpRequest"), ("X-Ref", "a Host: evil")),
        ),
    ]


def test_a_regex_with_two_groups_fills_both_placeholders():
    html = """<a href="javascript:void(0)" onclick="goView('BID', '77')">a</a>
      <a href="javascript:void(0)" onclick="goView('PRE', '78')">b</a>"""
    rules = rules_parse(
        {
            "items": [
                {
                    "css": "a[onclick]",
                    "attr": "onclick",
                    "regex": r"goView\('(\w+)',\s*'(\d+)'\)",
                    "request": {"url": "/{1}/view/{2}?whole={0}"},
                }
            ]
        }
    )

    page = extract(html, url=BOARD, rules=rules)

    assert page.items == [
        "https://www.example.go.kr/BID/view/77?whole=goView%28%27BID%27%2C+%2777%27%29",
        "https://www.example.go.kr/PRE/view/78?whole=goView%28%27PRE%27%2C+%2778%27%29",
    ]


def test_without_a_request_the_value_or_its_group_is_a_link():
    html = """<table><tr onclick="location.href='/n/9?x=1'"></tr>
      <tr onclick="location.href='mailto:a@b'"></tr></table>
      <li class=t>https://other.example/p/1</li><li class=t>not a url at all</li>"""
    rules = rules_parse(
        {
            "follow": [{"css": "li.t", "attr": "text"}],
            "items": [{"css": "tr", "attr": "onclick", "regex": r"href='([^']+)'"}],
        }
    )

    page = extract(html, url=BOARD, rules=rules)

    assert page.items == ["https://www.example.go.kr/n/9?x=1"]
    assert page.follow == [
        "https://other.example/p/1",
        # Links are resolved, not canonicalised, as links by href are (the engine does it).
        "https://www.example.go.kr/egov/notice/not a url at all",
    ]


def test_json_body_templates_are_posted_as_json():
    html = """<button class=v data-id="12">v</button>"""
    rules = rules_parse(
        {
            "items": [
                {
                    "css": "button.v",
                    "attr": "data-id",
                    "request": {
                        "method": "POST",
                        "url": "/api/view",
                        "json": {"id": "{0}", "page": 1, "flags": [True, None, "x{0}"]},
                    },
                }
            ]
        }
    )

    page = extract(html, url=BOARD, rules=rules)

    assert page.item_requests == [
        Request(
            "https://www.example.go.kr/api/view",
            "POST",
            '{"flags":[true,null,"x12"],"id":"12","page":1}',
            JSON,
        )
    ]


def test_a_missing_form_is_reported_by_entry_and_other_entries_still_work():
    rules = rules_parse(
        {
            "follow": [
                "nav a",
                {"css": "a[onclick]", "attr": "onclick", "request": {"from_form": "#gone"}},
            ],
        }
    )

    page = extract('<nav><a href="/p/2">2</a></nav><a onclick="x()">x</a>', url=BOARD, rules=rules)

    assert page.follow == ["https://www.example.go.kr/p/2"]
    assert page.requests == []
    assert page.errors == {"follow[1]": "no form matches '#gone' on this page"}


def test_the_sandbox_child_hands_back_the_requests_it_built():
    child = sandbox.Sandbox()
    try:
        page = child.extract(
            EGOV_LISTING.encode(),
            url=BOARD,
            rules=rules_parse(EGOV_RULES),
            budget=30,
            kill_after=30,
            want_fields=False,
        )
    finally:
        child.close()

    assert page.timeout is None
    assert [request.body for request in page.item_requests] == [
        "bbsId=BBSMSTR_000000000001&nttId=123",
        "bbsId=BBSMSTR_000000000001&nttId=124",
    ]
    assert len(page.requests) == 2


# --- hostile input ---------------------------------------------------------------------------


def test_a_backtracking_regex_runs_linear_on_re2():
    # (a+)+$ on "aaaa…!" takes exponential time in Python's re; RE2 answers at once.
    html = f'<a class=x onclick="{"a" * 50_000}!">x</a>' * 3
    rules = rules_parse({"items": [{"css": "a.x", "attr": "onclick", "regex": "(a+)+$"}]})

    page = extract(html, url=BOARD, rules=rules, deadline=time.monotonic() + 60)

    assert (page.timeout, page.items, page.item_requests) == (None, [], [])


def test_a_hundred_thousand_onclick_elements_stop_at_the_deadline():
    anchors = "".join(
        f"<a href=# onclick=\"fn_egov_inqire_notice('{i}')\">{i}</a>" for i in range(100_000)
    )
    html = f"{EGOV_LISTING.split('<table>')[0]}{anchors}</body></html>"
    rules = rules_parse(EGOV_RULES)
    started = time.monotonic()
    LexborHTMLParser(html)
    parsing = time.monotonic() - started
    deadline = time.monotonic() + 5 * parsing + 1  # parsing fits; the links step runs over

    def on_step(step: str) -> None:
        if step == "links":
            time.sleep(max(0.0, deadline - time.monotonic()) + 0.05)

    page = extract(html, url=BOARD, rules=rules, deadline=deadline, on_step=on_step)

    assert page.timeout == "links"
    assert (page.item_requests, page.requests) == ([], [])


def test_the_builder_looks_at_the_clock_while_it_walks_the_elements():
    anchors = "".join(f"<a onclick=\"v('{i}')\">{i}</a>" for i in range(1000))
    looks: list[int] = []
    rule = rules_parse(
        {"items": [{"css": "a", "attr": "onclick", "regex": r"v\('(\d+)'\)", "request": {}}]}
    ).items[0]
    builder = html_requests.Builder(
        LexborHTMLParser(anchors),
        page_url=BOARD,
        resolve=lambda href: href,
        ignore_params=(),
        check=lambda: looks.append(1),
    )

    found = list(builder.results(rule))

    assert len(found) == 1000
    assert len(looks) == 1000 // html_requests.NODES_PER_CHECK


# --- fields: map and currency ----------------------------------------------------------------


def test_a_map_applies_after_the_regex_and_before_the_type():
    rules = rules_parse(
        {
            "fields": {
                "title": "h1",
                "status": {"css": "p.s", "regex": r"상태:\s*(.+)", "map": {"공고중": "active"}},
                "views": {"css": "p.v", "map": {"없음": "0"}},
                "kind": {"css": "p.k", "map": {"일반": "general"}},
            }
        }
    )
    html = "<h1>T</h1><p class=s>상태: 공고중</p><p class=v>없음</p><p class=k>긴급</p>"

    page = extract(html, url=BOARD, rules=rules)

    assert page.fields == {"title": "T", "status": "active", "views": 0, "kind": "긴급"}
    assert page.errors == {}


@pytest.mark.parametrize(
    ("amount", "value", "currency"),
    [
        ("4,477,000,000 KRW", 4_477_000_000, "KRW"),
        ("1,000원", 1000, "KRW"),
        ("US$ 12,000", 12_000, "USD"),
        ("12,000", 12_000, None),
    ],
)
def test_an_amount_naming_its_currency_sets_the_currency(amount, value, currency):
    rules = rules_parse({"fields": {"title": "h1", "amount": "p.a"}})

    page = extract(f"<h1>T</h1><p class=a>{amount}</p>", url=BOARD, rules=rules)

    assert page.fields is not None
    assert page.fields.get("currency") == currency
    assert page.fields["amount"] == Decimal(value)


def test_a_currency_field_or_a_missing_amount_sets_no_currency_from_the_amount():
    with_field = rules_parse({"fields": {"title": "h1", "amount": "p.a", "currency": "p.c"}})
    without_amount = rules_parse({"fields": {"title": "h1", "amount": "p.a"}})

    given = extract("<h1>T</h1><p class=a>5 KRW</p><p class=c>EUR</p>", url=BOARD, rules=with_field)
    missing = extract("<h1>T</h1><p class=a>KRW</p>", url=BOARD, rules=without_amount)

    assert given.fields is not None
    assert given.fields["currency"] == "EUR"
    assert missing.fields is not None
    assert "currency" not in missing.fields


def test_the_demo_board_extracts_as_before_with_its_currency():
    site = render_site(BoardConfig(), static=False)
    origin = b"http://demo.test"
    listing = site["/notices/page/1"]
    notice = next(page for page in site.values() if page.kind == "notice")
    rules = rules_parse(DEMO_RULES)

    links = extract(origin.join(listing.parts), url="http://demo.test/notices/page/1", rules=rules)
    detail = extract(origin.join(notice.parts), url="http://demo.test/n", rules=rules)

    assert links.items
    assert all(isinstance(link, str) for link in links.items)
    assert links.follow
    assert (links.requests, links.item_requests) == ([], [])
    assert detail.fields is not None
    assert detail.fields["currency"] == "KRW"
    assert detail.errors == {}
