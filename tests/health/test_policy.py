"""The health decisions (tasks_lib/health/policy.py) over generated histories, registries and
times: a task is checked again and again, each plan's actions are applied to its registry entry
and hold as flows/autoheal.py and the rollback and promote flows would apply them, and the rules
are held to what the design promises (docs/design.md "Health"):

- never two actions for one breach, and one escalation per breach;
- no flapping: automatic decisions never go A -> B -> A;
- promotion only after K healthy verdicts (and always after them, unless stable or quarantined).

A breach is an *episode*: the task, its version, when that version started (``breach_id``), and
how many healthy verdicts came before it (a healthy verdict ends the episode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks_lib.core import ids
from tasks_lib.health import policy, stable
from tasks_lib.health.history import Escalated, Record, breach_id
from tasks_lib.health.source import iso

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
# in release order, hotfixes among them (after their base, before its next patch)
VERSIONS = ("1.0.0", "1.1.0", "1.1.0-hotfix-20261101", "1.2.0", "1.2.0-hotfix-20261120",
            "1.2.0-hotfix-20261120-2", "1.3.0", "1.4.0")
TASK = "T01"
FEW = settings(max_examples=150, deadline=None)


def newest(x: str, y: str) -> bool:
    return ids.Version.parse(x) > ids.Version.parse(y)


@st.composite
def registries(draw: st.DrawFn) -> dict[str, Any]:
    """A task's entry: VERSIONS snapshotted, marked stable or quarantined at random, one of them
    current (newer ones too: released, then rolled back from by hand), and maybe an automatic
    rollback of a while ago (to no version of these)."""
    marks = draw(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=len(VERSIONS),
                          max_size=len(VERSIONS)))
    snapshots = [{"version": v, "created_at": iso(T0 - timedelta(days=len(VERSIONS) - i)),
                  **({"stable": True} if s else {}), **({"quarantined": True} if q else {})}
                 for i, (v, (s, q)) in enumerate(zip(VERSIONS, marks, strict=True))]
    current = draw(st.sampled_from(VERSIONS[1:]))
    for s in snapshots:
        if s["version"] == current:
            s.pop("quarantined", None)  # the running version was never rolled back from
    history = []
    if draw(st.booleans()):
        ago = draw(st.integers(0, 180))
        history.append({"from_version": "2.0.0", "to_version": "0.9.0",
                        "rolled_back_at": iso(T0 - timedelta(minutes=ago)),
                        "reason": draw(st.sampled_from(["automatic: error rate 50%", "by hand"]))})
    return {"id": TASK, "version": current, "snapshots": snapshots, "rollback_history": history}


policies = st.builds(
    policy.Policy, auto_rollback=st.booleans(),
    min_interval=st.sampled_from([timedelta(0), timedelta(minutes=30), timedelta(hours=1)]),
    promote_after=st.integers(0, 3), errors_before_alert=st.integers(1, 3))

checks = st.lists(st.tuples(
    st.integers(1, 45),                                                   # minutes since the last
    st.sampled_from(["healthy", "breach", "inconclusive", "error"]),     # the error rate's verdict
    st.booleans() | st.just(True),                                       # live checks pass
    st.sampled_from(["ok", "fails", "running"]),                         # how a rollback ends
    st.booleans(),                                                       # a running one finishes
), min_size=1, max_size=25)


@dataclass
class World:
    """One task under the automation: what flows/autoheal.py, the rollback and the promote
    flows change, modelled on the registry entry and the hold file."""
    entry: dict[str, Any]
    held: Escalated | None = None
    history: list[Record] = field(default_factory=list)   # newest first
    pending: policy.RollBack | None = None                # handed to a deployment, still running
    versions: list[str] = field(default_factory=list)     # the task's version after each check
    healthy_seen: int = 0
    decided: dict[tuple[str, int], set[Any]] = field(default_factory=dict)
    escalations: dict[tuple[str, int], int] = field(default_factory=dict)
    promoted: list[tuple[policy.Promote, list[Record], dict[str, Any]]] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)       # promotions due that were not planned
    plans: list[tuple[policy.Action, ...]] = field(default_factory=list)
    targets: list[tuple[policy.RollBack, set[str]]] = field(default_factory=list)  # + quarantined

    def breach(self) -> tuple[str, int]:
        v = self.entry["version"]
        return breach_id(TASK, v, stable.version_started_at(self.entry, v)), self.healthy_seen

    def roll_back(self, act: policy.RollBack, now: datetime) -> None:
        for s in self.entry["snapshots"]:
            if s["version"] == act.version:
                s["quarantined"] = True
        self.entry["rollback_history"].append({
            "from_version": act.version, "to_version": act.target, "rolled_back_at": iso(now),
            "reason": act.reason})
        self.entry["version"] = act.target

    def escalate(self, act: policy.Escalate, now: datetime) -> None:
        key = self.breach()
        self.escalations[key] = self.escalations.get(key, 0) + 1
        self.held = Escalated(act.breach, iso(now), act.why, act.target)


def simulate(entry: dict[str, Any], rules: policy.Policy, steps: list[tuple]) -> World:
    w = World(entry, versions=[entry["version"]])
    now = T0
    for minutes, rate_verdict, live_ok, outcome, finishes in steps:
        now += timedelta(minutes=minutes)
        if w.pending is not None and finishes:
            w.roll_back(w.pending, now - timedelta(seconds=1))
            w.pending = None
        version = w.entry["version"]
        verdict = rate_verdict if live_ok or rate_verdict in ("breach", "error") else "unhealthy"
        w.history.insert(0, Record(now, version, verdict))
        if verdict == "healthy":
            w.healthy_seen += 1
        found = policy.Finding(TASK, version, rate_verdict, verdict, 0.5, 0.1, 20, 10)
        due = _promotion_due(w.history, version, rules.promote_after) and verdict == "healthy" \
            and not stable.is_stable(w.entry, version) and version not in stable.quarantined(w.entry)
        acts = policy.plan(found, list(w.history), w.entry, w.held, rules, now)
        w.plans.append(acts)
        if due and not any(isinstance(a, policy.Promote) for a in acts):
            w.missed.append(f"{version} at {iso(now)}")
        for act in acts:
            if isinstance(act, (policy.RollBack, policy.Escalate)):
                w.decided.setdefault(w.breach(), set()).add(
                    ("rollback", act.target, act.breach) if isinstance(act, policy.RollBack)
                    else ("escalate",))
            if isinstance(act, policy.Escalate):
                w.escalate(act, now)
            elif isinstance(act, policy.RollBack):
                w.targets.append((act, stable.quarantined(w.entry)))
                if act == w.pending:
                    continue  # the same breach's key: the deployment gives the same flow run back
                if outcome == "ok":
                    w.roll_back(act, now)
                elif outcome == "fails":
                    w.escalate(act.failed("the automatic rollback failed"), now)
                else:
                    w.pending = act
            elif isinstance(act, policy.Release):
                w.held = None
            elif isinstance(act, policy.Promote):
                w.promoted.append((act, list(w.history), {**w.entry}))
                w.entry = stable.promoted(w.entry, TASK, act.version)
        w.versions.append(w.entry["version"])
    return w


def _promotion_due(newest_first: list[Record], version: str, k: int) -> bool:
    """The reference: the newest K verdicts that are not ``inconclusive`` are all healthy
    verdicts of ``version`` (written apart from history.healthy_streak on purpose)."""
    if k <= 0:
        return False
    first_other = next((i for i, r in enumerate(newest_first) if r.version != version),
                       len(newest_first))
    own = [r for r in newest_first[:first_other] if r.verdict != "inconclusive"]
    return len(own) >= k and all(r.verdict == "healthy" for r in own[:k])


@FEW
@given(registries(), policies, checks)
def test_never_two_actions_for_one_breach_and_one_escalation_each(entry, rules, steps) -> None:
    w = simulate(entry, rules, steps)
    for acts in w.plans:
        kinds = [type(a) for a in acts]
        assert len(kinds) == len(set(kinds)), acts                # no action twice in one plan
        on_breach = [a for a in acts if isinstance(a, (policy.Hold, policy.Escalate,
                                                       policy.RollBack))]
        assert len(on_breach) <= 1 and (not on_breach or len(acts) == 1), acts
    for breach, decisions in w.decided.items():
        assert len(decisions) == 1, (breach, decisions)           # one decision per breach
    for breach, count in w.escalations.items():
        assert count == 1, (breach, count)                        # one escalation per breach


@FEW
@given(registries(), policies, checks)
def test_automatic_decisions_never_flap_between_versions(entry, rules, steps) -> None:
    w = simulate(entry, rules, steps)
    changes = [v for i, v in enumerate(w.versions) if i == 0 or v != w.versions[i - 1]]
    assert all(newest(a, b) for a, b in zip(changes, changes[1:], strict=False)), changes  # older
    assert len(changes) == len(set(changes)), changes             # so never A -> B -> A
    for act, quarantined in w.targets:
        assert act.target not in quarantined, (act, quarantined)  # a version left stays left


@FEW
@given(registries(), policies, checks)
def test_promotion_only_after_k_healthy_verdicts(entry, rules, steps) -> None:
    w = simulate(entry, rules, steps)
    for act, history, before in w.promoted:
        assert rules.promote_after > 0
        assert _promotion_due(history, act.version, rules.promote_after), (act, history[:5])
        assert act.version not in stable.quarantined(before)      # only a person promotes those
        assert not stable.is_stable(before, act.version)
    assert w.missed == []                                         # and always after them


# -- examples that pin each rule down ----------------------------------------------------------
def entry_at(current: str = "1.3.0", **extra: Any) -> dict[str, Any]:
    return {"id": TASK, "version": current, "rollback_history": [],
            "snapshots": [{"version": "1.2.0", "stable": True, "created_at": iso(T0)},
                          {"version": "1.3.0", "created_at": iso(T0 + timedelta(minutes=1))}],
            **extra}


def found(verdict: str, version: str = "1.3.0") -> policy.Finding:
    return policy.Finding(TASK, version, verdict, verdict, 0.5, 0.1, 20, 10)


def test_a_breach_rolls_back_then_the_escalation_holds_then_healthy_releases() -> None:
    rules = policy.Policy(auto_rollback=True)
    now = T0 + timedelta(hours=2)
    (act,) = policy.plan(found("breach"), [], entry_at(), None, rules, now)
    assert isinstance(act, policy.RollBack) and (act.version, act.target) == ("1.3.0", "1.2.0")
    assert act.reason.startswith("automatic: error rate 50.0% (10/20 runs of 1.3.0)")
    esc = act.failed("it failed")
    assert (esc.kind, esc.breach, esc.target) == ("auto-rollback-failed", act.breach, "1.2.0")
    assert esc.options[0].endswith("clawback rollback --task T01 --to 1.2.0")
    held = Escalated(act.breach, iso(now), "it failed", "1.2.0")
    (again,) = policy.plan(found("breach"), [], entry_at(), held, rules, now)
    assert isinstance(again, policy.Hold) and "held until the operator acts" in again.detail
    other = Escalated("T01-1.3.0-earlier", iso(now), "x", None)
    assert isinstance(policy.plan(found("breach"), [], entry_at(), other, rules, now)[0],
                      policy.RollBack)                            # another breach: decided anew
    assert policy.plan(found("healthy"), [], entry_at(), held, rules, now) == \
        (policy.Release(TASK, "1.3.0"),)


def test_nothing_for_a_breach_without_auto_rollback_or_of_a_version_no_longer_current() -> None:
    now = T0 + timedelta(hours=2)
    assert policy.plan(found("breach"), [], entry_at(), None, policy.Policy(), now) == ()
    assert policy.plan(found("breach"), [], entry_at("1.2.0"), None,
                       policy.Policy(auto_rollback=True), now) == ()


def test_errors_alert_once_when_the_streak_reaches_n() -> None:
    rules = policy.Policy(errors_before_alert=2)
    errors = [Record(T0, "1.3.0", "error")] * 3
    assert policy.plan(found("error"), errors[:1], entry_at(), None, rules, T0) == ()
    assert policy.plan(found("error"), errors[:2], entry_at(), None, rules, T0) == \
        (policy.Alert(TASK, "1.3.0", 2),)
    assert policy.plan(found("error"), errors, entry_at(), None, rules, T0) == ()
    assert policy.plan(found("error"), errors[:2], entry_at(), None,
                       policy.Policy(auto_rollback=True, errors_before_alert=2), T0) == \
        (policy.Alert(TASK, "1.3.0", 2),)                         # never a rollback


def test_promotion_needs_k_healthy_and_never_takes_a_quarantined_version() -> None:
    rules = policy.Policy(promote_after=2)
    two = [Record(T0, "1.3.0", "healthy"), Record(T0, "1.3.0", "inconclusive"),
           Record(T0, "1.3.0", "healthy")]
    assert policy.plan(found("healthy"), two[:2], entry_at(), None, rules, T0) == ()
    assert policy.plan(found("healthy"), two, entry_at(), None, rules, T0) == \
        (policy.Promote(TASK, "1.3.0", 2),)
    bad = entry_at()
    bad["snapshots"][1]["quarantined"] = True
    assert policy.plan(found("healthy"), two, bad, None, rules, T0) == ()
    unhealthy = policy.Finding(TASK, "1.3.0", "healthy", "unhealthy")
    assert policy.plan(unhealthy, two, entry_at(), None, rules, T0) == ()


def test_a_tasks_stable_after_setting_is_its_k_whatever_the_run_says() -> None:
    healthy = [Record(T0, "1.3.0", "healthy")] * 3
    own = {**entry_at(), "clawback": {"stable_after": 3}}
    never = policy.Policy(promote_after=0)                      # the run alone would never promote
    assert policy.plan(found("healthy"), healthy[:2], own, None, never, T0) == ()
    assert policy.plan(found("healthy"), healthy, own, None, never, T0) == \
        (policy.Promote(TASK, "1.3.0", 3),)
    assert policy.plan(found("healthy"), healthy[:2], own, None, policy.Policy(promote_after=2),
                       T0) == ()                                # the task's 3, not the run's 2
    broken = {**entry_at(), "clawback": {"stable_after": 0}}
    assert policy.plan(found("healthy"), healthy, broken, None, never, T0) == ()


@FEW
@given(registries())
def test_rollback_target_follows_release_order_with_hotfixes(entry: dict[str, Any]) -> None:
    """The target is the newest stable, non-quarantined version *released before* the current
    one, by VERSIONS' release order (a hotfix after its base, before the next patch), the
    reference here; never the version itself or a later one."""
    current = entry["version"]
    earlier = [v for v in VERSIONS[:VERSIONS.index(current)]
               if any(s["version"] == v and s.get("stable") and not s.get("quarantined")
                      for s in entry["snapshots"])]
    want = earlier[-1] if earlier else None
    assert stable.rollback_target(entry, current) == want
    decision = policy.decide({**entry, "rollback_history": []}, "breach", current, T0)
    assert (decision.action, decision.target) == (("rollback", want) if want else ("escalate", None))
