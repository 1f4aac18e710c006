"""The service database on both back ends: SQLite (embedded default) and PostgreSQL (Debian's server, started
by the test on 127.0.0.1 and stopped after): idempotent instances, claims with leases, retries, reviews,
keys, deliveries (`serve` on PostgreSQL end to end is in test_serve.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinical_mm.service.store import ServiceStore


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceStore]:
    if request.param == "sqlite":
        s = ServiceStore(tmp_path / "service.sqlite")
    else:
        url = request.getfixturevalue("postgres_url")
        s = ServiceStore(url)
        for table in ("instances", "studies", "api_keys", "reviews", "subscribers", "deliveries"):
            s._tx(f"DELETE FROM {table}")
    yield s
    s.close()


def test_when_an_instance_arrives_twice_then_it_is_recorded_once_and_its_study_queued(store: ServiceStore) -> None:
    assert store.add_instance("2.25.1", "2.25.100", Path("/spool/a.dcm")) is True
    assert store.add_instance("2.25.1", "2.25.100", Path("/spool/a.dcm")) is False
    assert store.add_instance("2.25.2", "2.25.100", Path("/spool/b.dcm")) is True
    assert store.claim_study(quiet_s=60) is None  # still inside the quiet period
    store.mark_complete({"2.25.100"})
    job = store.claim_study(quiet_s=60)
    assert job is not None and job.study_key == "2.25.100" and len(job.files) == 2
    assert store.claim_study(quiet_s=0) is None  # leased
    store.set_state("2.25.100", "analyzed", result={"impression": "x"}, priority="urgent")
    store.set_state("2.25.100", "delivered")
    assert store.add_instance("2.25.2", "2.25.100", Path("/spool/b.dcm")) is False
    assert store.study("2.25.100")["state"] == "delivered"  # type: ignore[index]
    assert store.add_instance("2.25.3", "2.25.100", Path("/spool/c.dcm")) is True  # a new instance reopens it
    assert store.study("2.25.100")["state"] == "received"  # type: ignore[index]


def test_when_a_job_fails_then_it_backs_off_then_fails_and_can_be_retried(store: ServiceStore) -> None:
    store.add_instance("2.25.1", "2.25.7", Path("/spool/a.dcm"))
    store.mark_complete({"2.25.7"})
    assert store.claim_study(quiet_s=0) is not None
    assert store.retry_later("2.25.7", "OutputError", max_attempts=2, backoff_s=60) == "retry"
    assert store.claim_study(quiet_s=0) is None  # backing off
    assert store.retry_later("2.25.7", "OutputError", max_attempts=2, backoff_s=60) == "failed"
    assert store.study("2.25.7")["state"] == "failed"  # type: ignore[index]
    assert store.retry_now("2.25.7") and store.claim_study(quiet_s=0) is not None
    store.recover()  # a restart voids the lease
    assert store.claim_study(quiet_s=0) is not None


def test_when_the_worklist_is_read_then_priority_comes_first_then_arrival(store: ServiceStore) -> None:
    for i, priority in enumerate(["routine", "critical", "urgent", "routine"]):
        store.add_instance(f"2.25.{i}", f"2.25.10{i}", Path(f"/spool/{i}.dcm"))
        store.set_state(f"2.25.10{i}", "analyzed", result={}, priority=priority)
        time.sleep(0.01)
    assert [s["study_key"] for s in store.studies()] == ["2.25.101", "2.25.102", "2.25.100", "2.25.103"]


def test_when_a_review_is_signed_then_it_cannot_be_changed(store: ServiceStore) -> None:
    assert store.save_review("2.25.5", status="edited", findings="f", impression="i", reviewer="k_1")
    assert store.save_review("2.25.5", status="signed", findings="f2", impression="i2", reviewer="k_1",
                             diff="-a\n+b", report={"status": "final"})
    assert not store.save_review("2.25.5", status="edited", findings="x", impression="y", reviewer="k_2")
    review = store.review("2.25.5")
    assert review is not None and review["status"] == "signed" and review["report"] == {"status": "final"}


def test_when_keys_and_deliveries_are_used_then_they_behave_on_both_back_ends(store: ServiceStore) -> None:
    key_id, key = store.create_api_key("radiologist", "Dr. Store")
    assert store.api_key_role(key) == (key_id, "radiologist", "Dr. Store")
    assert store.revoke_api_key(key_id) and store.api_key_role(key) is None
    sub = store.add_subscriber("http://127.0.0.1:9/x", "secret-secret-secret", "routine")
    store.enqueue_delivery("evt_1", sub, "2.25.9", "{}")
    store.enqueue_delivery("evt_1", sub, "2.25.9", "{}")  # the same event again: ignored
    assert len(store.deliveries(sub)) == 1 and store.delivery_states("2.25.9") == {"pending": 1}
    item = store.claim_delivery()
    assert item is not None and store.claim_delivery() is None
    assert store.delivery_failed("evt_1", sub, "503", max_attempts=2, backoff_s=0) == "pending"
    item = store.claim_delivery()
    assert item is not None
    assert store.delivery_failed("evt_1", sub, "503", max_attempts=2, backoff_s=0) == "dead"
    assert store.deliveries(sub)[0]["state"] == "dead" and store.delivery_states("2.25.9") == {"dead": 1}
    store.add_instance("2.25.90", "2.25.9", Path("/spool/9.dcm"))
    store.retry_later("2.25.9", "1 callback deliveries dead-lettered", max_attempts=1, backoff_s=0)
    assert store.retry_now("2.25.9") and store.delivery_states("2.25.9") == {"pending": 1}  # an operator's retry re-sends
