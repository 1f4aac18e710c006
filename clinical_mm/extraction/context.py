"""Assertion of a mention by the ConText algorithm (Harkema et al., J Biomed Inform 2009): is it present,
absent, possible, historical, about someone else (family), or hypothetical?

Trigger terms are matched in the mention's sentence. Each has a category and a direction: a *forward*
trigger (pre-trigger, "no", "history of") modifies what follows it, a *backward* trigger (post-trigger,
"is ruled out", "unlikely") what precedes it, a *bidirectional* one ("mother") both. A trigger's scope
runs to the end (start) of the sentence, cut at a *termination* term ("but", "however", "which") or after
its maximum number of tokens. *Pseudo-triggers* contain a trigger word and mean nothing ("no increase",
"not ruled out" is possible, not absent; "history of present illness"); matching the longest term first,
they take that trigger word out of play.

A mention's assertion is the highest of the categories whose scope covers it: family (the mention is about
someone other than the patient) > hypothetical > absent > possible > historical > present. A mention with
no trigger takes its section's default: historical in past medical and surgical history, family in family
history.

The rules are data (:data:`RULES`); :class:`ConText` takes more (``extra_rules``), e.g. a site's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["ASSERTIONS", "Assertion", "ConText", "ContextRule", "RADIOLOGY_RULES", "RULES", "Trigger"]

Assertion = Literal["present", "absent", "possible", "historical", "family", "hypothetical"]
Category = Literal["absent", "possible", "historical", "family", "hypothetical", "terminate", "pseudo"]
Direction = Literal["forward", "backward", "both", "none"]

#: assertions from the strongest claim on a mention to the weakest
ASSERTIONS: tuple[Assertion, ...] = ("family", "hypothetical", "absent", "possible", "historical", "present")

#: section -> the assertion of a mention there that no trigger modifies
SECTION_DEFAULTS: dict[str, Assertion] = {"pmh": "historical", "psh": "historical", "family_history": "family"}


@dataclass(frozen=True)
class ContextRule:
    """A trigger term (a regular expression over lower-case text; spaces match any white space), its category,
    direction, and the most tokens its scope reaches (None: the sentence); a termination term ends the scopes of
    the categories in ``ends`` (empty: every category)."""

    term: str
    category: Category
    direction: Direction = "forward"
    max_scope: int | None = None
    ends: tuple[Category, ...] = ()


def _rules(category: Category, direction: Direction, terms: Iterable[str], max_scope: int | None = None
           ) -> list[ContextRule]:
    return [ContextRule(t, category, direction, max_scope) for t in terms]


RULES: tuple[ContextRule, ...] = tuple([
    # --- pseudo-triggers: a trigger word that does not negate, doubt or date anything
    *_rules("pseudo", "none", [
        r"no (?:significant |interval |definite |suspicious |appreciable |substantial |further )?"
        r"(?:increase|decrease|change|changes|worsening|improvement|enlargement|growth)",
        r"not (?:only|necessarily|certain if|certain whether|clear if|clear whether)", "no further",
        r"without (?:difficulty|complication|complications|incident|problems?)", "gram negative",
        r"not (?:extend|drain|cause|causing)", r"no (?:other|additional) (?:complaints|concerns|issues)",
        r"history of (?:the )?present illness", "history and physical", "social history", "medical history",
        "surgical history", r"history (?:was )?(?:obtained|provided|taken)", r"prior (?:study|studies|exam|exams|"
        r"examination|examinations|film|films|radiograph|radiographs|ct|mri|imaging|to|day)",
        r"previous (?:study|studies|exam|exams|examination|film|films|radiograph|radiographs|imaging)",
        r"(?:compared|comparison) (?:to|with)", "if needed", "as needed", r"if (?:necessary|possible)",
        r"previously (?:seen|noted|described|demonstrated|identified|visualized|reported)",
        r"none (?:in|for|since) (?:the )?(?:past|last)?",
        "not been able", "not able", r"no (?:longer|acute distress)", r"rule out (?:by|with)",
        r"(?:partial|partially|some|slight|mild|minimal|incomplete|early|slow|slowly) (?:interval )?clearing(?: of)?",
    ]),
    # --- absent
    *_rules("absent", "forward", [
        "no", "not", "denies", "denied", "deny", "denying", "without", "w/o", "negative for", "neg for",
        "no evidence of", "no evidence for", "no signs of", "no sign of", "no findings of", "no suggestion of",
        "no new", "free of", "absence of", "never had", "never", "neither", "nor", "resolution of",
        "rules out", "ruled out for", "fails to reveal", "failed to reveal",
        "no complaints of", "not demonstrate", "not show", "not reveal", "no history of", "no hx of", "no h/o",
        "no known", "nkda", "unremarkable for", "clear of", "there is no", "there are no",
        "did not have", "does not have", "has not had", "no abnormal", "no radiographic evidence of",
        "no acute", "patient was not", "cannot see", "no focal", "denies history of", "denies any history of",
        "no prior history of", "no previous", "no past history of", "no personal history of", "denies any",
        "no prior", "not had", "no recent", r"(?:is|was|were|are) negative for",
        "removal of", "interval removal of", "not likely",
    ]),
    *_rules("absent", "backward", [
        "is ruled out", "are ruled out", "was ruled out", "were ruled out", "has been ruled out",
        "have been ruled out", "is excluded", "was excluded", "has been excluded", "have been excluded",
        "not seen", "not identified", "not present", "not appreciated", "not visualized", "not detected",
        "not demonstrated", "not noted", "is absent", "are absent", "was absent", "were absent", "has resolved",
        "have resolved", "was negative", "is negative", "were negative",
        r"not (?:definitely|clearly|convincingly|confidently|well) (?:seen|visualized|identified|appreciated|demonstrated)",
        "not evident", "no longer seen", "no longer present", "not found", "not observed", "unlikely",
        "is not likely", "are not likely",
        r"no longer (?:clearly |well )?(?:seen|visualized|visible|appreciated|identified|evident|present|demonstrated|"
        r"noted|apparent|detected|demonstrable)", r"(?:has|have) (?:since |now |completely |largely |nearly )?cleared",
        "is unlikely", "very unlikely", "highly unlikely",
        "has been removed", "have been removed", "was removed", "were removed",
    ]),
    *_rules("absent", "backward", ["none", "free", "negative"], max_scope=3),
    *_rules("absent", "both", ["resolved", "ruled out", "absent", "removed"], max_scope=5),
    *_rules("absent", "forward", ["clearing of", "interval clearing of", "interval resolution of"]),
    # --- possible (uncertain)
    *_rules("possible", "forward", [
        "possibly", "probably", "suspect", "suspicion of", "suspicious for", "concerning for", "concern for",
        "question of", "rule out", "r/o", "to rule out", "to exclude", "evaluate for", "eval for", "assess for",
        "cannot exclude", "cannot rule out", "can not exclude", "can not rule out", "could not exclude",
        "could not rule out", "may represent", "may be", "might be", "could be", "could represent", "may reflect",
        "may have", "could reflect", "might reflect", "may indicate", "could indicate", "might represent",
        "differential diagnosis includes", "ddx", "differential includes", "presumed", "presumably",
        "worrisome for", "suggestive of", "suggests", "suggesting", "equivocal", "borderline",
        "uncertain", "unclear if", "unclear whether", "concern is for", "thought to be", "felt to be", "favored",
        "favor", "correlation for", "correlate for", "possible", "probable", "likely", "questionable",
        "suspicion for", "maybe", "questionably", "differential considerations include", "differential considerations",
        "differential diagnosis including", "differential diagnosis", "considerations include",
    ]),
    *_rules("possible", "backward", [
        "cannot be excluded", "can not be excluded", "cannot be ruled out", "can not be ruled out",
        "could not be excluded", "could not be ruled out", "not excluded", "not ruled out", "is not excluded",
        "not entirely excluded", "is not ruled out",
        r"not (?:yet |been |entirely |completely |definitely )+(?:ruled out|excluded)",
    ]),
    *_rules("possible", "backward", [
        "is possible", "is likely", "is probable", "is suspected", "was suspected", "is questioned", "less likely",
        "is favored", "is a consideration", "are a consideration", "is considered",
    ], max_scope=4),
    *_rules("possible", "both", ["suspected", "versus", "vs", "?"], max_scope=5),
    # --- historical
    *_rules("historical", "forward", [
        "history of", "hx of", "h/o", "previous", "prior", "remote history of", "status post", "s/p", "healed",
        "chronic history of", "known history of", "longstanding history of", "long-standing history of",
        "remote", "formerly", r"(?<![a-z0-9-])(?<!years\s)(?<!year\s)old(?![a-z0-9-])",
    ]),
    *_rules("historical", "backward", [
        "in the past", "years ago", "months ago", "as a child", "in childhood", "in remote past",
        r"in (?:19|20)\d\d", "many years ago", "decades ago", "history", "hx",
    ], max_scope=8),
    *_rules("historical", "both", ["previously"], max_scope=6),
    # --- someone else (family)
    *_rules("family", "forward", [
        "family history of", "family history significant for", "family hx of", "fhx of", "fh of", "fhx",
        "family history", "family history is significant for", "family history is positive for",
        "no family history of", "family history negative for", "family history is negative for",
    ]),
    *_rules("family", "backward", [
        "runs in the family", "in the family",
        r"in (?:his |her |the |their |a |both |two |several )?(?:maternal |paternal )?(?:mother|father|brothers?|"
        r"sisters?|siblings?|aunts?|uncles?|grand(?:mother|father|parents?)|cousins?|sons?|daughters?|parents|"
        r"relatives?|family members?)",
    ], max_scope=6),
    *_rules("family", "forward", [
        "mother", "father", "brother", "brothers", "sister", "sisters", "sibling", "siblings", "aunt", "uncle",
        "grandmother", "grandfather", "grandparent", "grandparents", "cousin", "son", "daughter", "parents",
        "maternal", "paternal", "mom", "dad", "twin", "niece", "nephew", "relatives", "relative",
        "family member", "family members",
    ], max_scope=8),
    # --- hypothetical
    *_rules("hypothetical", "forward", [
        "if", "return if", "return for", "call if", "call for", "in case of", "in case", "should", "watch for",
        "monitor for", "look out for", "seek care if", "seek medical attention if", "come back if",
        "precautions for", "in the event of", "risk of", "at risk for", "prophylaxis for", "to prevent",
        "prevention of", "screening for", "would", "will need", "whether", "unless",
    ]),
    *_rules("hypothetical", "backward", ["precautions", "prophylaxis"], max_scope=3),
    *_rules("hypothetical", "forward", [r"p\.?r\.?n\.?(?: for)?", "as needed for", "if needed for"], max_scope=4),
    # --- what ends a trigger's scope
    *_rules("terminate", "none", [
        "but", "however", "although", "though", "yet", "except", "aside from", "apart from", "other than",
        "which", "who", "given", "in the setting of", "in setting of", "currently", "current",
        "ongoing", "as the cause of", "as a cause of",
        "cause of", "etiology of", "source of", "reason for", "trigger for", "still", "otherwise", "presents with",
        "presented with", "presenting with", "reports", "reported", "complains of", "complaining of", "c/o",
        "endorses", "endorsed", "admits to", "positive for", "notable for", "significant for", "remarkable for",
        "and has", "now has", "is noted", "are noted", "there is", "there are", "now with",
        "in addition", "additionally", "also", "while", "whereas", "then", "now", ";",
    ]),
    # a negation or a dating does not run into a finding described as what remains ("prior stroke with residual
    # weakness", "no pneumothorax, residual small effusion"); a doubt does
    ContextRule(r"(?<![a-z0-9])with(?=\s+residual\b)|,(?=\s+residual\b)", "terminate", "none",
                ends=("absent", "historical")),
])


#: Rules read in radiology reports only (the report labeler adds them to :data:`RULES`): where a negation stops
#: in a report's list of findings, and what an image cannot show, a limitation, not a finding ("evaluation for
#: pneumothorax is limited", "could obscure a nodule", "fractures may not be demonstrated", "a lateral view would
#: be helpful to evaluate for an effusion"). Kept out of :data:`RULES` because notes read otherwise: "breathing is
#: difficult" is a symptom, "denies fever, chills and new cough" denies the cough.
RADIOLOGY_RULES: tuple[ContextRule, ...] = tuple([
    # a negation does not run across "with" or "and" into a finding described anew ("no cardiomegaly with small
    # bilateral effusions"); a doubt does ("differential considerations include infiltrates and mild edema"). In
    # reports only: notes list what is denied so ("denies fever, chills and new cough")
    ContextRule(
        r"(?<![a-z0-9])(?:with|and)(?=\s+(?:a |an |the |some )?(?:small|smaller|tiny|trace|minimal|mild|mildly|moderate|"
        r"moderately|large|larger|severe|extensive|bilateral|bibasilar|left|right|new|persistent|stable|increased|"
        r"increasing|decreased|decreasing|worsening|improving|patchy|focal|diffuse|multifocal|scattered|"
        r"associated|adjacent|underlying|residual)\b)", "terminate", "none", ends=("absent", "historical")),
    *_rules("hypothetical", "backward", [
        r"(?:is|are) (?:somewhat |markedly |significantly |slightly |mildly |severely )?(?:limited|difficult)"
        r"(?!\s+to\b)",
        r"(?:could|may|might|can|would) be (?:obscured|missed|occult|hidden|overlooked)",
        r"(?:could|may|might|can|would) not be (?:detected|demonstrated|seen|visible|visualized|appreciated|evident)",
        r"cannot be (?:assessed|evaluated)",
    ], max_scope=5),
    *_rules("hypothetical", "forward", [
        r"(?:could|may|might|can|would) (?:obscure|mask|hide)",
        r"(?:would|could|may|might|can) be (?:helpful|useful|obtained|performed|considered) (?:to|for)(?: (?:further )?"
        r"(?:evaluate|evaluation|assess|assessment)(?: for| of)?)?",
        r"if (?:there is )?(?:clinical )?(?:concern|suspicion) (?:for|of)", "if clinically concerned for",
        "if clinically indicated", "if clinically warranted",
    ], max_scope=8),
])

# A trigger that is a single word must not be a whole-word part of a longer word; ";" and ":" and "?" are
# their own tokens.
_TOKEN = re.compile(r"[a-z0-9]+(?:['/-][a-z0-9]+)*|[^\sa-z0-9]")
# what terms are matched by: runs of letters and digits, and each other character alone
_PIECE = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def _is_pattern(term: str) -> bool:
    return any(c in term for c in "([\\")


def _pattern(term: str) -> str:
    """A term's regular expression: words joined by any white space; a term with ``(``, ``[`` or a backslash
    is a regular expression already."""
    body = r"\s+".join(w if _is_pattern(term) else re.escape(w) for w in term.split(" "))
    left = r"(?<![a-z0-9])" if term[:1].isalnum() else ""
    right = r"(?![a-z0-9])" if term[-1:].isalnum() or term.endswith(")") else ""
    return left + body + right


@dataclass(frozen=True)
class Trigger:
    """A matched trigger: its rule and [start, end) in the sentence."""

    rule: ContextRule
    start: int
    end: int


class ConText:
    """Assertions of mentions in a sentence (see the module's text)."""

    def __init__(self, rules: Iterable[ContextRule] = RULES, extra_rules: Iterable[ContextRule] = ()) -> None:
        self.rules = [*rules, *extra_rules]
        # Where terms compete for the same words, the longer term wins ("no increase" over "no", "no history
        # of" over "no"). Plain terms (words) are looked up by their words, a dictionary lookup per word and
        # length; the few terms that are regular expressions run as one alternation, longest first.
        self._words: dict[tuple[str, ...], tuple[int, tuple[bool, ...]]] = {}
        patterns: list[int] = []
        for i in sorted(range(len(self.rules)), key=lambda i: -len(self.rules[i].term)):
            term = self.rules[i].term
            if _is_pattern(term):
                patterns.append(i)
                continue
            pieces = list(_PIECE.finditer(term))
            # which neighbouring pieces the term writes apart (white space) and which together ("h/o")
            apart = tuple(a.end() < b.start() for a, b in zip(pieces, pieces[1:], strict=False))
            self._words.setdefault(tuple(p.group() for p in pieces), (i, apart))
        self._longest = max((len(k) for k in self._words), default=0)
        self._regex = (re.compile("|".join(f"(?P<r{i}>{_pattern(self.rules[i].term)})" for i in patterns))
                       if patterns else None)

    def triggers(self, sentence: str) -> list[Trigger]:
        """The triggers in ``sentence`` (lower-cased inside), left to right, not overlapping."""
        lower = sentence.lower()
        pieces = list(_PIECE.finditer(lower))
        words = [p.group() for p in pieces]
        found: list[tuple[int, int, int, int]] = []  # (start, -len(term), end, rule)
        for i in range(len(pieces)):
            for n in range(min(self._longest, len(pieces) - i), 0, -1):
                hit = self._words.get(tuple(words[i:i + n]))
                if hit is None:
                    continue
                rule, apart = hit
                last = pieces[i + n - 1]
                # a piece is a whole run of letters and digits, so a term's words never match inside a word
                if all((pieces[j].end() < pieces[j + 1].start()) == apart[j - i] for j in range(i, i + n - 1)):
                    found.append((pieces[i].start(), -len(self.rules[rule].term), last.end(), rule))
                    break
        if self._regex is not None:
            for m in self._regex.finditer(lower):
                group = m.lastgroup
                assert group is not None
                rule = int(group[1:])
                found.append((m.start(), -len(self.rules[rule].term), m.end(), rule))
        out: list[Trigger] = []
        end = 0
        for start, _, stop, rule in sorted(found):
            if start >= end:
                out.append(Trigger(self.rules[rule], start, stop))
                end = stop
        return out

    @staticmethod
    def _scopes(sentence: str, triggers: list[Trigger]) -> list[tuple[Trigger, int, int]]:
        """Each modifying trigger with its scope [start, end) in the sentence: cut at a termination term, at
        a trigger of another category (a new claim begins), and after its maximum number of tokens."""
        modifiers = [t for t in triggers if t.rule.category not in ("terminate", "pseudo")]
        lower = sentence.lower()
        out = []
        for t in modifiers:
            # a new claim (a trigger of another category) ends a scope; dating a mention ("seen previously")
            # does not end a claim about it ("the pneumothorax seen previously has resolved")
            stops = [s for s in triggers if (s.rule.category == "terminate"
                                             and (not s.rule.ends or t.rule.category in s.rule.ends))
                     or (s.rule.category not in ("pseudo", "historical", "terminate")
                         and s.rule.category != t.rule.category)]
            start, end = t.start, t.end
            if t.rule.direction in ("forward", "both"):
                end = min([s.start for s in stops if s.start >= t.end] + [len(sentence)])
                if t.rule.max_scope is not None:
                    tokens = list(_TOKEN.finditer(lower, t.end, end))
                    if len(tokens) > t.rule.max_scope:
                        end = tokens[t.rule.max_scope - 1].end()
            if t.rule.direction in ("backward", "both"):
                start = max([s.end for s in stops if s.end <= t.start and not s.rule.ends] + [0])
                if t.rule.max_scope is not None:
                    tokens = list(_TOKEN.finditer(lower, start, t.start))
                    if len(tokens) > t.rule.max_scope:
                        start = tokens[-t.rule.max_scope].start()
            out.append((t, start, end))
        return out

    def assert_mentions(self, sentence: str, mentions: list[tuple[int, int]], section: str = "none"
                        ) -> list[tuple[Assertion, list[Trigger]]]:
        """For each mention [start, end) of ``sentence``: its assertion and the triggers that decided it."""
        masked = sentence
        for start, end in mentions:  # a mention is not a trigger, nor part of one ("no [acute fracture]")
            masked = masked[:start] + "x" * (end - start) + masked[end:]
        triggers = self.triggers(masked)
        scopes = self._scopes(sentence, triggers)
        out: list[tuple[Assertion, list[Trigger]]] = []
        for start, end in mentions:
            hits = [t for t, a, b in scopes
                    if (t.end <= start and start < b) or (t.start >= end and a <= start)]
            categories = {t.rule.category for t in hits}
            assertion: Assertion = next((a for a in ASSERTIONS if a in categories),
                                        SECTION_DEFAULTS.get(section, "present"))
            out.append((assertion, [t for t in hits if t.rule.category == assertion]))
        return out
