"""Blinded review queue (no Qt): order, codes, progress, resume, unblinding."""

import json

import pytest
from test_review_session import make_skin_results

from histo_fms.review import ReviewQueue

STEMS = ("skin_a", "skin_b", "skin_c", "skin_d", "skin_e")


@pytest.fixture
def out(tmp_path):
    return make_skin_results(tmp_path, stems=STEMS)


def test_order_is_seeded_and_codes_are_neutral(out):
    q = ReviewQueue(out, "AB", seed=3)
    cases = q.cases()
    assert [c.label for c in cases] == [f"case {i} of 5" for i in range(1, 6)]
    for c in cases:
        assert not any(s in c.code for s in STEMS) and "skin" not in c.code
    order = [q._stem(c.code) for c in cases]
    assert sorted(order) == sorted(STEMS)
    # another reviewer, other seed: other order, same seed: same order
    q2 = ReviewQueue(out, "CD", seed=3)
    assert [q2._stem(c.code) for c in q2.cases()] == order
    queues = [ReviewQueue(out, f"R{s}", seed=s) for s in range(6)]
    orders = {tuple(qq._stem(c.code) for c in qq.cases()) for qq in queues}
    assert len(orders) > 1


def test_progress_resume_and_unblind(out):
    q = ReviewQueue(out, "AB", seed=1)
    c1 = q.next_case()
    s = q.open_case(c1.code)
    assert s.blind_code == c1.code
    s.add_crossing(31.0, 10.0)
    nxt = q.complete(c1.code)
    assert q.progress == (1, 5) and nxt.index == 2
    with pytest.raises(RuntimeError, match="not finished"):
        q.unblind()
    with pytest.raises(RuntimeError, match="blinded"):
        q.key()
    # resume: a new object (new process) continues where the reviewer stopped
    q = ReviewQueue(out, "AB")
    assert q.progress == (1, 5) and q.next_case().code == nxt.code
    with pytest.raises(ValueError, match="seed"):
        ReviewQueue(out, "AB", seed=2)
    while (c := q.next_case()) is not None:
        q.open_case(c.code)
        q.complete(c.code)
    assert q.finished
    key = q.unblind()
    assert set(key["stem"]) == set(STEMS)
    assert set(key["group"]) == {"HC", "FMS"}
    assert key["done"].all()
    events = [e["event"] for e in q.log]
    assert events[0] == "created" and events[-2:] == ["finished", "unblinded"]
    assert events.count("opened") == 5 and events.count("completed") == 5
    assert all(e["reviewer"] == "AB" and e["time"] for e in q.log)
    # the audit log of the image records the neutral code
    audit = s.history()
    assert audit[0]["case"] == c1.code
    stored = json.loads(q.path.read_text())
    assert stored["unblinded"] is True


def test_early_unblinding_is_recorded(out):
    q = ReviewQueue(out, "AB", seed=1)
    key = q.unblind(force=True)
    assert len(key) == 5 and not key["done"].any()
    assert q.log[-1]["event"] == "unblinded_early"
