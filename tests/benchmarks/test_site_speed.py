"""Site build speed: 10,000 runs must build in under 60 s on a 2-core machine (issue 7).

The runs are copies of one real probe run (new ids, start times an hour apart, two methods), so
the store has the shape of a long nightly history on one machine.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import run_probe
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from harness.publish.site import build_site
from harness.store import open_store
from harness.store.models import Measurement, Run

RUNS = 10_000


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    url = f"sqlite:///{root / 'big.db'}"
    store, _ = run_probe(url)
    with store.session() as session:
        template = session.scalars(select(Run).options(selectinload(Run.measurements))).one()
        columns = [c.key for c in Run.__table__.columns]
        copies = []
        for index in range(RUNS - 1):
            values = {name: getattr(template, name) for name in columns}
            values.update(
                id=f"{index + 1:032x}",
                seed=index % 5,
                method_name=f"method-{index % 2}",
                method_hash=f"{index % 2:064x}",
                started_at=template.started_at + timedelta(hours=index + 1),
                finished_at=template.finished_at + timedelta(hours=index + 1),
            )
            copy = Run(**values)
            copy.measurements = [
                Measurement(name=m.name, value=m.value * (1 + (index % 7) / 100), unit=m.unit,
                            higher_is_better=m.higher_is_better, samples=m.samples)
                for m in template.measurements
            ]  # fmt: skip
            copies.append(copy)
        session.add_all(copies)
        session.commit()
    return open_store(url), root


def test_site_build_for_10000_runs(benchmark, big_store):
    store, root = big_store
    summary = benchmark.pedantic(lambda: build_site(store, root / "site"), rounds=1, iterations=1)
    assert summary.runs == RUNS
    assert benchmark.stats.stats.max < 60.0  # issue 7: 10,000 runs in under a minute here
