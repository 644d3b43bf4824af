"""What the model's suggestion does to experts, read off the suggestion holdout.

An expert shown a suggestion agrees with the model more often than one labelling the same kind of
item unaided, right or wrong (automation bias). With the project's holdout on, a random share of
items is served without the suggestion and what the model would have said is recorded
(labeller.suggestion_holdout), so for each annotator two rates compare like with like:

- agreement with the model when shown its suggestion vs when it was withheld: the difference, with
  its 95 % interval (Newcombe, ml.gates.difference_interval), is the pull of the suggestion;
- agreement with the other annotators' consensus (the majority of the others who labelled the same
  item) when shown vs withheld: whether the suggestion makes the labels better or only more alike
  the model's;
- wrong suggestions accepted: of the shown suggestions that the others' consensus contradicts, the
  share the annotator took anyway.

Each rate carries its Wilson interval; an annotator with a handful of items gets a wide one, not a
verdict. Answers are compared exactly (a span answer must match span for span).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ml.drift import wilson_interval
from ml.gates import difference_interval

from .models import Annotation, AnnotationSource, Project
from .task_types import task_type_for


@dataclass
class Count:
    agree: int = 0
    n: int = 0

    def add(self, agrees: bool) -> None:
        self.n += 1
        self.agree += int(agrees)

    def as_dict(self) -> dict:
        interval = wilson_interval(self.agree, self.n)
        return {"agree": self.agree, "n": self.n, "rate": round(self.agree / self.n, 4) if self.n else None,
                "interval": [round(x, 4) for x in interval] if interval else None}


@dataclass
class Tally:
    model_shown: Count = field(default_factory=Count)
    model_withheld: Count = field(default_factory=Count)
    consensus_shown: Count = field(default_factory=Count)
    consensus_withheld: Count = field(default_factory=Count)
    wrong_accepted: Count = field(default_factory=Count)

    def as_dict(self) -> dict:
        shown, withheld = self.model_shown, self.model_withheld
        pull = None
        if shown.n and withheld.n:
            a, b = shown.agree / shown.n, withheld.agree / withheld.n
            low, high = difference_interval(a, shown.n, b, withheld.n)
            pull = {"difference": round(a - b, 4), "interval": [round(low, 4), round(high, 4)]}
        return {"model_shown": shown.as_dict(), "model_withheld": withheld.as_dict(), "pull": pull,
                "consensus_shown": self.consensus_shown.as_dict(), "consensus_withheld": self.consensus_withheld.as_dict(),
                "wrong_accepted": self.wrong_accepted.as_dict()}


def suggestion_effect(*, project: Project) -> dict:
    """{"annotators": [{"user_id", "username", **figures}], "all": figures}; figures as
    Tally.as_dict. Streams the project's expert annotations once, in item order."""
    task_type = task_type_for(project)
    canonical = task_type.canonical
    rows = (Annotation.objects.filter(project=project, skipped=False, annotator__isnull=False,
                                      source=AnnotationSource.EXPERT)
            .order_by("item_id", "id")
            .values_list("item_id", "annotator_id", "annotator__username", "labels", "suggested_labels",
                         "withheld_suggestion"))
    tallies: dict[int, Tally] = defaultdict(Tally)
    names: dict[int, str] = {}
    total = Tally()

    def settle(answers: list[tuple]) -> None:
        for i, (who, labels, suggested, withheld) in enumerate(answers):
            others = [a[1] for j, a in enumerate(answers) if j != i]
            consensus = canonical(task_type.majority(others)[0]) if others else None
            mine = canonical(labels)
            for tally in (tallies[who], total):
                if suggested is not None:
                    tally.model_shown.add(mine == canonical(suggested))
                    if consensus is not None:
                        tally.consensus_shown.add(mine == consensus)
                        if canonical(suggested) != consensus:
                            tally.wrong_accepted.add(mine == canonical(suggested))
                elif withheld is not None:
                    tally.model_withheld.add(mine == canonical(withheld))
                    if consensus is not None:
                        tally.consensus_withheld.add(mine == consensus)

    current, answers = None, []
    for item_id, who, username, labels, suggested, withheld in rows.iterator(chunk_size=5000):
        if item_id != current:
            settle(answers)
            current, answers = item_id, []
        names[who] = username
        answers.append((who, labels, suggested, withheld))
    settle(answers)
    annotators = [{"user_id": who, "username": names[who], **tallies[who].as_dict()}
                  for who in sorted(tallies, key=lambda w: names[w])]
    return {"annotators": annotators, "all": total.as_dict(), "holdout": project.suggestion_holdout}

