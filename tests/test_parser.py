"""domain.parser against every deviation the answer contract lists, and then some."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.classes import CLASSES, by_code, by_name
from domain.parser import parse_answer, partial_summary
from domain.result import ParsedAnswer

SUMMARY = "비대칭적이고 경계가 불규칙한 흑갈색 반점으로, 여러 색조가 섞여 있습니다. 직경은 7 mm 입니다."
DISCLAIMER = "※ 이 결과는 참고용이며 최종 진단은 전문의의 진찰이 필요합니다."


def label(code, score, name, tag="label", quote='"'):
    q = quote
    return f"<{tag} id_code={q}{code}{q} score={q}{score}{q}>{name}</{tag}>"


def answer(code=6, score=78, name="악성흑색종", summary=SUMMARY,
           similar=((2, 15, "멜라닌세포모반"), (14, 5, "흑색점")), *, with_similar=True) -> str:
    sims = "".join(label(c, s, n, "similar_label") for c, s, n in similar)
    block = f"<similar_labels>{sims}</similar_labels>" if with_similar else ""
    return f"<root>{label(code, score, name)}<summary>{summary}</summary>{block}</root>"


VALID = answer()
WITH_TAIL = f"{VALID}\n{DISCLAIMER}"


def codes(parsed: ParsedAnswer) -> list[int]:
    return [s.lesion.code for s in parsed.similar]


def assert_sane(parsed: ParsedAnswer) -> None:
    """Invariants that hold whatever the input."""
    assert isinstance(parsed, ParsedAnswer)
    assert isinstance(parsed.summary, str)
    assert all(isinstance(p, str) and p for p in parsed.problems)
    if parsed.complete:
        assert parsed.label is not None
    else:
        assert parsed.problems, "an incomplete answer must say why"
    scored = ([parsed.label] if parsed.label else []) + list(parsed.similar)
    assert all(0 <= s.score <= 100 and s.lesion in CLASSES for s in scored)
    lesions = [s.lesion for s in parsed.similar]
    assert len(set(lesions)) == len(lesions), "duplicate similar classes"
    assert parsed.label is None or parsed.label.lesion not in lesions
    assert [s.score for s in parsed.similar] == sorted((s.score for s in parsed.similar), reverse=True)


# -- the clean answer and its decorations --------------------------------------------------------

def test_clean_answer():
    parsed = parse_answer(VALID)
    assert parsed.complete and parsed.problems == ()
    assert parsed.label.lesion == by_code(6) and parsed.label.score == 78.0
    assert parsed.summary == SUMMARY
    assert codes(parsed) == [2, 14] and [s.score for s in parsed.similar] == [15.0, 5.0]
    assert_sane(parsed)


@pytest.mark.parametrize("raw", [
    f"```xml\n{VALID}\n```",
    f"```\n{VALID}\n```\n{DISCLAIMER}",
    f"Here is my assessment of the lesion:\n\n```xml\n{VALID}\n```\n\n{DISCLAIMER}",
    f"분석 결과는 다음과 같습니다.\n{VALID}\n{DISCLAIMER}",
    f"{VALID}\n\nPlease consult a dermatologist.",
    VALID.replace("><", ">\n  <"),  # pretty-printed
    VALID.upper().replace(SUMMARY.upper(), SUMMARY),  # upper-case tags
])
def test_fences_prose_and_layout_do_not_matter(raw):
    parsed = parse_answer(raw)
    assert parsed.complete and parsed.problems == ()
    assert parsed.label.lesion.code == 6 and parsed.summary == SUMMARY
    assert codes(parsed) == [2, 14]


@pytest.mark.parametrize(("written", "expected"), [("78%", 78.0), ("78 %", 78.0), ("78.5", 78.5), ("78.0%", 78.0),
                                                   ("0", 0.0), ("100", 100.0)])
def test_scores_with_percent_signs_and_decimals(written, expected):
    parsed = parse_answer(answer(score=written, similar=((2, "15%", "멜라닌세포모반"),)))
    assert parsed.complete and parsed.problems == ()
    assert parsed.label.score == expected and parsed.similar[0].score == 15.0


def test_unquoted_attributes():
    parsed = parse_answer("<root><label id_code=6 score=78%>악성흑색종</label><summary>x</summary></root>")
    assert parsed.complete and parsed.label.lesion.code == 6 and parsed.label.score == 78.0


def test_single_quotes_and_other_attribute_order():
    raw = ("<root><label score='78' id_code='6'>악성흑색종</label><summary>요약</summary><similar_labels>"
           "<similar_label score='15%' id_code='2'>멜라닌세포모반</similar_label></similar_labels></root>")
    parsed = parse_answer(raw)
    assert parsed.complete and parsed.problems == ()
    assert (parsed.label.lesion.code, parsed.label.score) == (6, 78.0)
    assert codes(parsed) == [2] and parsed.similar[0].score == 15.0


def test_similar_labels_missing_is_still_complete():
    parsed = parse_answer(answer(with_similar=False) + "\n" + DISCLAIMER)
    assert parsed.complete and parsed.similar == () and parsed.problems == ()
    assert parsed.label.lesion.code == 6


def test_empty_similar_labels():
    parsed = parse_answer(answer(similar=()))
    assert parsed.complete and parsed.similar == ()


# -- names and codes ------------------------------------------------------------------------------

def test_name_that_does_not_match_its_code_keeps_the_code_and_says_so():
    parsed = parse_answer(answer(code=6, name="멜라닌세포모반"))
    assert parsed.complete
    assert parsed.label.lesion == by_code(6)
    assert any("does not match code 6" in p for p in parsed.problems)


@pytest.mark.parametrize("name", ["Basal cell carcinoma", "basal cell carcinoma", "Basal-cell carcinoma",
                                  "BASAL CELL CARCINOMA", "기저세포암", " 기저 세포암 "])
def test_english_or_variant_name_with_its_code(name):
    parsed = parse_answer(answer(code=1, name=name, similar=()))
    assert parsed.complete and parsed.problems == ()
    assert parsed.label.lesion == by_code(1)


@pytest.mark.parametrize("name", ["Basal cell carcinoma", "기저세포암"])
def test_name_without_code(name):
    raw = f'<root><label score="78">{name}</label><summary>요약</summary></root>'
    parsed = parse_answer(raw)
    assert parsed.complete and parsed.problems == ()
    assert parsed.label.lesion == by_code(1) and parsed.label.score == 78.0


@pytest.mark.parametrize(("name", "code"), [("Bowen's disease", 3), ("Bowen’s disease", 3), ("SCC in situ", 3),
                                            ("Wart", 5), ("verruca", 5), ("화농육아종", 13),
                                            ("Bowen&apos;s disease (SCC in situ)", 3)])
def test_english_aliases_and_entities_in_names(name, code):
    parsed = parse_answer(f'<root><label score="40">{name}</label><summary>s</summary></root>')
    assert parsed.label is not None and parsed.label.lesion.code == code


def test_every_class_round_trips_by_code_korean_and_english_name():
    for lesion in CLASSES:
        assert by_code(lesion.code) is lesion
        assert by_name(lesion.name_ko) is lesion and by_name(lesion.name_en) is lesion
        for name in (lesion.name_ko, lesion.name_en):
            parsed = parse_answer(answer(code=lesion.code, name=name, similar=()))
            assert parsed.complete and parsed.problems == () and parsed.label.lesion is lesion


def test_known_code_with_unknown_name_keeps_the_code_and_says_so():
    parsed = parse_answer(answer(code=7, name="검버섯 같은 것"))
    assert parsed.complete and parsed.label.lesion == by_code(7)
    assert any("unknown name for code 7" in p for p in parsed.problems)


def test_unknown_code_with_known_name_uses_the_name():
    parsed = parse_answer(answer(code=42, name="지루각화증", similar=()))
    assert parsed.label.lesion == by_code(7)


@pytest.mark.parametrize("code", [42, -1, 15, "x"])
def test_unknown_code_and_unknown_name(code):
    parsed = parse_answer(answer(code=code, name="Unicorn dermatosis"))
    assert parsed.label is None and not parsed.complete
    assert any("neither code nor name" in p for p in parsed.problems)
    assert parsed.summary == SUMMARY  # what could be read is still there
    assert_sane(parsed)


def test_enormous_code_does_not_raise():
    parsed = parse_answer(answer(code="1" * 5000, name="지루각화증"))
    assert parsed.label.lesion.code == 7
    parsed = parse_answer(answer(code="9" * 5000, name="???"))
    assert parsed.label is None and not parsed.complete


def test_label_without_score_is_unreadable():
    parsed = parse_answer('<root><label id_code="6">악성흑색종</label><summary>s</summary></root>')
    assert parsed.label is None and not parsed.complete
    assert any("no score" in p for p in parsed.problems)


@pytest.mark.parametrize(("written", "clamped"), [("178", 100.0), ("100.5", 100.0), ("-5", 0.0), ("9999%", 100.0)])
def test_score_out_of_range_is_clamped_and_noted(written, clamped):
    parsed = parse_answer(answer(score=written, similar=((2, written, "멜라닌세포모반"),)))
    assert parsed.complete
    assert parsed.label.score == clamped and parsed.similar[0].score == clamped
    assert any("outside 0-100, clamped" in p for p in parsed.problems)


# -- the summary ---------------------------------------------------------------------------------

def test_html_entities_in_the_summary_are_decoded():
    summary = "크기 &lt;6 mm &amp; 경계 &quot;불규칙&quot;, 색조 &#xB2E4;양 &#54632;"
    parsed = parse_answer(answer(summary=summary))
    assert parsed.complete
    assert parsed.summary == '크기 <6 mm & 경계 "불규칙", 색조 다양 함'


def test_summary_whitespace_is_collapsed():
    parsed = parse_answer(answer(summary="\n  첫 줄입니다.\n\n  둘째   줄입니다.\t"))
    assert parsed.summary == "첫 줄입니다. 둘째 줄입니다."


def test_missing_summary_is_incomplete():
    parsed = parse_answer('<root><label id_code="6" score="78">악성흑색종</label></root>')
    assert parsed.label.lesion.code == 6 and not parsed.complete and parsed.summary == ""
    assert any("summary" in p for p in parsed.problems)


# -- similar labels ------------------------------------------------------------------------------

def test_duplicates_and_the_chosen_class_are_dropped_from_similar():
    similar = ((2, 15, "멜라닌세포모반"), (2, 12, "멜라닌세포모반"), (6, 10, "악성흑색종"), (14, 30, "흑색점"),
               (14, 3, "Lentigo"))
    parsed = parse_answer(answer(similar=similar))
    assert parsed.complete
    assert codes(parsed) == [14, 2]  # sorted by score, first occurrence of each kept
    assert [s.score for s in parsed.similar] == [30.0, 15.0]
    assert_sane(parsed)


def test_unreadable_similar_label_is_skipped_with_a_problem():
    parsed = parse_answer(answer(similar=((99, 15, "???"), (2, 10, "멜라닌세포모반"))))
    assert parsed.complete and codes(parsed) == [2]
    assert any(p.startswith("similar 1:") for p in parsed.problems)


# -- cut off by max_tokens -----------------------------------------------------------------------

def _cut_after(marker: str, extra: int = 0) -> str:
    return WITH_TAIL[:WITH_TAIL.index(marker) + len(marker) + extra]


@pytest.mark.parametrize(("raw", "has_label", "summary_prefix", "similar"), [
    ("<ro", False, "", []),
    ("<root><label id_co", False, "", []),
    ('<root><label id_code="6" score="7', False, "", []),
    (_cut_after('score="78">'), False, "", []),
    (_cut_after("악성흑"), False, "", []),
    (_cut_after("</la"), False, "", []),
    (_cut_after("</label>"), True, "", []),
    (_cut_after("<summ"), True, "", []),
    (_cut_after("<summary>"), True, "", []),
    (_cut_after("경계가 불규"), True, "비대칭적이고 경계가 불규", []),
    (_cut_after("</sum"), True, SUMMARY, []),
    (_cut_after("</summary>"), True, SUMMARY, []),
    (_cut_after("<similar_labels>"), True, SUMMARY, []),
    (_cut_after("<similar_label id_code=\"2\" sc"), True, SUMMARY, []),
    (_cut_after("멜라닌세포"), True, SUMMARY, []),
    (_cut_after("멜라닌세포모반</similar_label>"), True, SUMMARY, [2]),
    (_cut_after("흑색점</similar_label>"), True, SUMMARY, [2, 14]),
    (_cut_after("</similar_labels>"), True, SUMMARY, [2, 14]),
    (_cut_after("</similar_labels></ro"), True, SUMMARY, [2, 14]),
])
def test_cut_off_answers_are_incomplete_and_never_raise(raw, has_label, summary_prefix, similar):
    parsed = parse_answer(raw)
    assert not parsed.complete
    assert (parsed.label is not None) == has_label
    if has_label:
        assert parsed.label.lesion.code == 6 and parsed.label.score == 78.0
    assert parsed.summary == summary_prefix
    assert codes(parsed) == similar
    assert "<" not in parsed.summary and "&" not in parsed.summary
    assert_sane(parsed)


def test_cut_off_before_root_closes_says_so():
    parsed = parse_answer(_cut_after("</similar_labels>"))
    assert "answer cut off before </root>" in parsed.problems


def test_complete_exactly_when_root_closed():
    end = WITH_TAIL.index("</root>") + len("</root>")
    full = parse_answer(WITH_TAIL)
    for i in range(len(WITH_TAIL) + 1):
        parsed = parse_answer(WITH_TAIL[:i])
        assert parsed.complete == (i >= end), i
        if parsed.complete:
            assert parsed == full


# -- no XML at all -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "I'm sorry, but I can't help with identifying skin lesions. Please consult a dermatologist.",
    "죄송하지만 사진만으로는 진단을 드릴 수 없습니다. 피부과 전문의와 상담하세요.",
    "",
    "   \n",
    None,
])
def test_refusals_and_empty_answers(raw):
    parsed = parse_answer(raw)
    assert parsed.label is None and not parsed.complete and parsed.summary == "" and parsed.similar == ()
    assert "no XML in the answer" in parsed.problems
    assert_sane(parsed)


def test_stray_markup_without_a_label():
    parsed = parse_answer("<p>The image is too blurry to assess.</p>")
    assert parsed.label is None and not parsed.complete
    assert "no label element" in parsed.problems


# -- partial_summary while streaming -------------------------------------------------------------

STREAM_SUMMARY = "크기 &lt;6 mm &amp; 경계가 &quot;불규칙&quot;하고\n  색조가 다양함 &#54632; AT&amp;T"


@pytest.mark.parametrize("raw", [answer(summary=STREAM_SUMMARY) + "\n" + DISCLAIMER,
                                 "```xml\n" + answer(summary=SUMMARY) + "\n```",
                                 answer(summary=SUMMARY, with_similar=False)])
def test_partial_summary_grows_monotonically_without_tag_fragments(raw):
    final = parse_answer(raw).summary
    previous = ""
    for i in range(len(raw) + 1):
        now = partial_summary(raw[:i])
        assert now.startswith(previous), (i, previous, now)
        assert final.startswith(now), (i, now)
        assert "<simi" not in now and "</sum" not in now and "<summ" not in now
        previous = now
    assert previous == final


def test_partial_summary_before_summary_opens_is_empty():
    assert partial_summary("") == ""
    assert partial_summary('<root><label id_code="6" score="78">악성') == ""
    assert partial_summary('<root><label id_code="6" score="78">악성흑색종</label><summ') == ""
    assert partial_summary('<root><label id_code="6" score="78">악성흑색종</label><summary') == ""


def test_partial_summary_stops_at_similar_labels_when_summary_never_closed():
    raw = '<summary>결절이 보입니다.<similar_labels><similar_label id_code="2" score="1'
    assert partial_summary(raw) == "결절이 보입니다."


# -- properties ----------------------------------------------------------------------------------

_SNIPPETS = ["<", ">", "</", "<label", "</label>", "<summary>", "</summary>", "<similar_labels>",
             "</similar_labels>", "<similar_label", "</similar_label>", "</root>", "<root>", 'id_code="',
             "score=", "%", '"', "'", "&", "&amp;", "&#", ";", "```", "\n", "악성흑색종", "Basal cell carcinoma",
             "-", "999", "1" * 30]


@st.composite
def valid_answers(draw):
    main = draw(st.sampled_from(CLASSES))
    others = draw(st.lists(st.sampled_from(CLASSES), max_size=4))
    score = lambda: draw(st.one_of(st.integers(-20, 140), st.floats(0, 100).map(lambda f: round(f, 1))))  # noqa: E731
    name = lambda c: draw(st.sampled_from([c.name_ko, c.name_en]))  # noqa: E731
    raw = answer(code=main.code, score=score(), name=name(main),
                 summary=draw(st.text(st.characters(exclude_characters="<>"), max_size=60)),
                 similar=[(c.code, score(), name(c)) for c in others],
                 with_similar=draw(st.booleans()))
    return raw + draw(st.sampled_from(["", "\n" + DISCLAIMER]))


@st.composite
def damaged_answers(draw):
    raw = draw(valid_answers())
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(raw)))
        kind = draw(st.sampled_from(("cut", "delete", "insert", "snippet", "swapcase")))
        if kind == "cut":
            raw = raw[:at]
        elif kind == "delete":
            raw = raw[:at] + raw[at + draw(st.integers(1, 12)):]
        elif kind == "insert":
            raw = raw[:at] + draw(st.text(max_size=8)) + raw[at:]
        elif kind == "snippet":
            raw = raw[:at] + draw(st.sampled_from(_SNIPPETS)) + raw[at:]
        else:
            raw = raw[:at] + raw[at:at + 10].swapcase() + raw[at + 10:]
    return raw


_PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(st.text(max_size=400))
def test_never_raises_on_arbitrary_text(raw):
    assert_sane(parse_answer(raw))
    assert isinstance(partial_summary(raw), str)


@_PROPERTY
@given(st.lists(st.sampled_from(_SNIPPETS + ["기저세포암", "x", " ", "78"]), max_size=40).map("".join))
def test_never_raises_on_tag_soup(raw):
    assert_sane(parse_answer(raw))
    assert isinstance(partial_summary(raw), str)


@_PROPERTY
@given(damaged_answers())
def test_never_raises_on_damaged_answers(raw):
    assert_sane(parse_answer(raw))
    assert isinstance(partial_summary(raw), str)


@_PROPERTY
@given(valid_answers(), st.data())
def test_truncations_of_a_valid_answer(raw, data):
    end = raw.index("</root>") + len("</root>")
    full = parse_answer(raw)
    assert full.complete and full.label is not None
    cut = data.draw(st.integers(0, len(raw)))
    parsed = parse_answer(raw[:cut])
    assert_sane(parsed)
    assert parsed.complete == (cut >= end)
    if parsed.label is not None:
        assert parsed.label == full.label
    assert full.summary.startswith(partial_summary(raw[:cut]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "가", " ", "\n", "&", "#", ";", "x", "1", "amp", "lt", "not", "quot", "B2E4",
                                 "%", "'", '"']), max_size=25).map("".join))
def test_partial_summary_is_monotonic_for_any_summary_text(summary):
    raw = answer(summary=summary)
    final = parse_answer(raw).summary
    previous = ""
    for i in range(len(raw) + 1):
        now = partial_summary(raw[:i])
        assert now.startswith(previous) and final.startswith(now), (summary, i, previous, now)
        previous = now
    assert previous == final


def test_problems_are_message_ids_whose_english_is_the_problem_text():
    from domain.messages import Message

    answer = parse_answer('<root><label id_code="3" score="140">지루각화증</label><similar_labels>'
                          '<similar_label id_code="99" score="5">지루각화증</similar_label></similar_labels>')
    assert answer.problem_messages[0] == Message("answer.name_mismatch", {"part": "label", "rank": "", "code": 3})
    assert tuple(str(m) for m in answer.problem_messages) == answer.problems
    assert "similar 1: code 99 is not one of the 15; name used" in answer.problems
