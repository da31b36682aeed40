# -*- coding: utf-8 -*-
from __future__ import annotations

import pytest

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, format_duration, parse_duration)


@pytest.mark.parametrize('text,seconds', [
    ('30s', 30), ('10m', 600), ('24h', 86400), ('7d', 604800), ('1w', 604800),
    ('1h30m', 5400), ('1h 30m', 5400), ('250ms', 0.25), ('90', 90), (90, 90), (1.5, 1.5),
    ('0s', 0), ('2H', 7200),
])
def test_parses(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize('bad', ['', 'abc', '10 minutes', '1y', '-5s', -1, '5s10', 'h', None, True])
def test_refuses_with_one_sentence(bad):
    with pytest.raises(DurationError) as err:
        parse_duration(bad, 'clean[0].older_than')
    assert str(err.value).startswith('clean[0].older_than must')
    assert '\n' not in str(err.value)


def test_format_round_trips():
    for seconds in (0, 59, 3600, 90061, 604800):
        assert parse_duration(format_duration(seconds)) == seconds
