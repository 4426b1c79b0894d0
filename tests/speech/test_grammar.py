from __future__ import annotations

from callcenter.speech.grammar import MenuGrammar, normalize


def test_normalize_lowercases_strips_punctuation_and_spells_digits() -> None:
    assert normalize("Technical Support!") == ("technical", "support")
    assert normalize("Press 1") == ("press", "one")
    assert normalize("  ") == ()


def test_grammar_maps_words_back_to_the_flows_phrase_and_drops_unknown_words() -> None:
    g = MenuGrammar.build(["Billing", "technical support", "zzqxv"], known={
        "billing", "technical", "support"})
    assert g.phrase_for(["technical", "support"]) == "technical support"
    assert g.phrase_for(["billing"]) == "Billing"
    assert g.phrase_for(["zzqxv"]) is None
    trans = g.transitions()
    starts = [t for t in trans if t[0] == 0]
    assert sorted(t[3] for t in starts) == ["billing", "technical"]
    assert abs(sum(t[2] for t in starts) - 1.0) < 1e-9
    assert any(t[1] == 1 and t[3] == "support" for t in trans)


def test_grammar_name_depends_only_on_the_phrase_set() -> None:
    a = MenuGrammar.build(["sales", "billing"])
    b = MenuGrammar.build(["billing", "sales"])
    c = MenuGrammar.build(["billing", "operator"])
    assert a.name == b.name != c.name


def test_may_continue_only_when_the_words_so_far_begin_a_longer_phrase() -> None:
    main = MenuGrammar.build(["billing", "technical support", "one"])
    assert main.may_continue(["technical"])  # "technical ... support": keep listening
    assert main.may_continue([])  # no path yet, and a two-word phrase exists
    assert not main.may_continue(["billing"])
    assert not main.may_continue(["technical", "support"])
    digits = MenuGrammar.build(["one", "two", "three"])
    assert not digits.may_continue([])  # single words only: nothing to wait for
