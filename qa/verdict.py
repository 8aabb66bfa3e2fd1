"""The plain-language verdict of a batch, in the reader's language (the tables in domain/locales/*/qa_stats.py).

    verdict(metrics, {"runpod": "RunPod"}, lang="ko")    # paragraphs: the set, each pair (or the one provider),
                                                          # what the unanswered cases change, then any warning

It states the set's malignant prevalence, each difference with its paired interval (a difference that is not
significant is never called equivalence: the interval says how large it may still be), and names every case
left unanswered. Input is the dict qa.metrics.qa_metrics builds.
"""

from __future__ import annotations

from collections.abc import Mapping

from qa.words import Words
from utils.stats import wilson_interval

ALPHA = 0.05


class _Say(Words):
    """The verdict's words: keys under "qa.stats."."""

    def __call__(self, key: str, **values: object) -> str:
        return super().__call__(f"qa.stats.{key}", **values)


def _p(value: float) -> str:
    if value < 0.001:
        return "p < 0.001"
    return f"p = {value:.3f}" if value < 0.1 else f"p = {value:.2f}"


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _points(value: float) -> str:
    """A difference of shares in percentage points, signed: '+12.5', '−3.0'."""
    return f"{value * 100:+.1f}".replace("-", "−")


def _flags(say: _Say, first: str, a: dict, second: str, b: dict) -> str:
    if not a["malignant_positives"] and not b["malignant_positives"]:
        return say("no_malignant_pair", first=first, second=second)
    key = "flags_pair_one" if a["malignant_positives"] == 1 else "flags_pair"
    return say(key, first=first, flagged=a["malignant_flagged"], positives=a["malignant_positives"],
               second=second, flagged_b=b["malignant_flagged"], positives_b=b["malignant_positives"])


def _difference(say: _Say, key: str, part: dict, first: str, second: str) -> str:
    if not part.get("n") or part.get("difference_ci95") is None:
        return ""
    lo, hi = part["difference_ci95"]
    text = say(key, first=first, second=second, difference=_points(part["difference"]), low=_points(lo),
               high=_points(hi), p=_p(part["mcnemar_p"]), n=part["n"])
    if part["mcnemar_p"] >= ALPHA:
        text += " " + say("not_equivalent", largest=f"{max(abs(lo), abs(hi)) * 100:.1f}")
    return text


def _two(value: float) -> str:
    """Two decimals, without a minus sign on a value that rounds to zero."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def _kappa(say: _Say, pair: dict) -> str:
    if pair.get("kappa") is None or pair.get("kappa_ci95") is None:
        return ""
    lo, hi = pair["kappa_ci95"]
    flag = say("flag_kappa_none")
    if pair.get("flag_kappa") is not None and pair.get("flag_kappa_ci95") is not None:
        flo, fhi = pair["flag_kappa_ci95"]
        flag = say("flag_kappa", kappa=_two(pair["flag_kappa"]), low=_two(flo), high=_two(fhi))
    return say("kappa", kappa=_two(pair["kappa"]), low=_two(lo), high=_two(hi), n=pair["kappa_n"], flag=flag)


def _pair_paragraph(say: _Say, pair: dict, first: str, a: dict, second: str, b: dict) -> str:
    head = _flags(say, first, a, second, b)
    if not pair["n"]:
        return say("no_common", head=head, first=first, second=second)
    p = pair["mcnemar_p"]
    if p >= ALPHA:
        text = say("not_significant", head=head, p=_p(p), n=pair["n"])
    else:
        winner, loser, more, fewer = (first, second, pair["only_a"], pair["only_b"]) \
            if pair["only_a"] > pair["only_b"] else (second, first, pair["only_b"], pair["only_a"])
        text = say("significant", head=head, winner=winner, loser=loser, p=_p(p), n=pair["n"], more=more,
                   fewer=fewer)
    parts = [text, _difference(say, "top1_difference", {"n": pair["n"], "difference": pair.get("top1_difference"),
                                                         "difference_ci95": pair.get("top1_difference_ci95"),
                                                         "mcnemar_p": p}, first, second)]
    parts.append(_difference(say, "sensitivity_difference", pair.get("malignant_sensitivity") or {}, first, second))
    parts.append(_difference(say, "specificity_difference", pair.get("malignant_specificity") or {}, first, second))
    parts.append(_kappa(say, pair))
    return " ".join(part for part in parts if part)


def _single_paragraph(say: _Say, title: str, m: dict) -> str:
    if not m["n"]:
        return say("nothing_to_judge", title=title)
    flags = (say("flags_one" if m["malignant_positives"] == 1 else "flags", title=title,
                 flagged=m["malignant_flagged"], positives=m["malignant_positives"])
             if m["malignant_positives"] else say("no_malignant", title=title))
    lo, hi = m["top1_ci95"]
    return say("single", flags=flags, accuracy=_pct(m["top1_accuracy"]), low=_pct(lo), high=_pct(hi), n=m["n"])


def _set_paragraph(say: _Say, metrics: dict) -> str | None:
    the_set = metrics.get("set") or {}
    prevalence = metrics.get("prevalence") or {}
    if not the_set.get("cases"):
        return None
    text = say("set_one" if the_set["cases"] == 1 else "set", cases=the_set["cases"], malignant=the_set["malignant"],
               share=_pct(the_set["prevalence"]))
    if prevalence.get("value") is not None and 0 < prevalence["value"] < 1:
        key = "at_given" if prevalence.get("source") == "given" else "at_set"
        text += " " + say(key, prevalence=f"{prevalence['value']:.1%}")
    return text


def _unanswered(say: _Say, title: str, m: dict) -> str | None:
    if not m.get("unanswered"):
        return None
    top1 = m.get("top1_accuracy_intention_to_diagnose")
    sens = m.get("malignant_sensitivity_intention_to_diagnose")
    text = say("unanswered", title=title, count=m["unanswered"], cases=m.get("n_intention_to_diagnose", 0),
               accuracy="—" if top1 is None else _pct(top1))
    if sens is not None:
        text += " " + say("unanswered_sensitivity", sensitivity=_pct(sens),
                          answered="—" if m.get("malignant_sensitivity") is None else _pct(m["malignant_sensitivity"]))
    return text


def _at_prevalence(say: _Say, metrics: dict, title: Mapping[str, str]) -> str | None:
    """What each provider's flag means at the prevalence: PPV, NPV, flags and missed cancers per 1,000."""
    value = (metrics.get("prevalence") or {}).get("value")
    if value is None or not 0 < value < 1:
        return None
    found = []
    for name, m in metrics["providers"].items():
        if m.get("ppv") is None and m.get("npv") is None:
            continue
        found.append(say("at_prevalence", title=title[name],
                         ppv=_with_interval(m.get("ppv"), m.get("ppv_ci95"), _pct),
                         npv=_with_interval(m.get("npv"), m.get("npv_ci95"), _pct),
                         flags=_with_interval(m.get("flags_per_1000"), m.get("flags_per_1000_ci95"), _whole),
                         missed=_with_interval(m.get("missed_per_1000"), m.get("missed_per_1000_ci95"), _whole)))
    return say("at_prevalence_lead", prevalence=f"{value:.1%}", listed="; ".join(found)) if found else None


def _whole(value: float) -> str:
    return f"{value:.0f}"


def _with_interval(value: float | None, ci: list[float] | None, shown) -> str:
    if value is None:
        return "—"
    return shown(value) if not ci else f"{shown(value)} ({shown(ci[0])}–{shown(ci[1])})"


def _provenance(say: _Say, metrics: dict, title: Mapping[str, str]) -> str | None:
    """How many labels only confirm a provider's answer, and each provider's top-1 accuracy without them."""
    the_set = metrics.get("set") or {}
    count = the_set.get("confirmed_answer_labels") or 0
    if not count:
        return None
    without = []
    for name, m in metrics["providers"].items():
        part = m.get("excluding_confirmed_answer") or {}
        if part.get("top1_accuracy") is not None:
            without.append(say("provenance_provider", title=title[name], accuracy=_pct(part["top1_accuracy"]),
                               n=part["n"]))
    return say("provenance", count=count, cases=the_set.get("cases", 0), listed=", ".join(without) or "—")


def _warning(say: _Say, metrics: dict, title: Mapping[str, str]) -> str | None:
    minimum = metrics["method"]["min_n_for_intervals"]
    small = [(title[name], m["n"]) for name, m in metrics["providers"].items() if m["n"] < minimum]
    if not small:
        return None
    lo, hi = wilson_interval(minimum // 2, minimum) or (0.0, 1.0)
    listed = ", ".join(f"{name} n = {n}" for name, n in small)
    return say("too_few", listed=listed, minimum=minimum, low=_pct(lo), high=_pct(hi))


def _strata(say: _Say, metrics: dict, title: Mapping[str, str]) -> str | None:
    """The small strata below the whole set: malignant and benign cases by name, subgroups by count (the report's
    sample size table lists each)."""
    found = []
    for name, m in metrics["providers"].items():
        if not m["n"]:
            continue
        small = [s for s in m.get("sample_size") or [] if s["small"] and s["n"] and s["stratum"] != "all cases"]
        for s in small:
            if "=" in s["stratum"]:
                continue
            lo, hi = s["ci95"]
            found.append(say("stratum", title=title[name], stratum=say_stratum(say, s["stratum"]), n=s["n"],
                             low=_pct(lo), high=_pct(hi), needed=s["n_for_5_points"]))
        subgroups = sum(1 for s in small if "=" in s["stratum"])
        if subgroups:
            found.append(say("small_subgroups", title=title[name], count=subgroups))
    return say("small_strata", listed="; ".join(found)) if found else None


def say_stratum(say: _Say, stratum: str) -> str:
    """A stratum's name in the table's language: "malignant cases", or a subgroup "column=value" as it is."""
    key = {"all cases": "stratum_all", "malignant cases": "stratum_malignant", "benign cases": "stratum_benign"}
    return say(key[stratum]) if stratum in key else stratum


def verdict(metrics: dict, names: Mapping[str, str], lang: str = "en") -> list[str]:
    """Plain-language paragraphs in `lang` ("en" or "ko"; another falls back to English): the set and its
    prevalence, one per pair of providers (or the single provider's), the flag at the prevalence, the labels that
    only confirm an answer, the unanswered cases, then warnings.

    `names` maps a provider's name to its title ("runpod" → "RunPod"); one missing from it keeps the title in
    `metrics`, so a provider is named one way throughout.
    """
    say = _Say(lang)
    providers = metrics["providers"]
    title = {name: names.get(name) or m["title"] for name, m in providers.items()}
    out = [line for line in [_set_paragraph(say, metrics)] if line]
    out += [_pair_paragraph(say, pair, title[pair["a"]], providers[pair["a"]], title[pair["b"]], providers[pair["b"]])
            for pair in metrics["pairs"]]
    if len(providers) == 1:
        [(name, m)] = providers.items()
        out.append(_single_paragraph(say, title[name], m))
    out += [line for line in (_at_prevalence(say, metrics, title), _provenance(say, metrics, title)) if line]
    out += [line for name, m in providers.items() if (line := _unanswered(say, title[name], m))]
    out += [line for line in (_warning(say, metrics, title), _strata(say, metrics, title)) if line]
    return out
