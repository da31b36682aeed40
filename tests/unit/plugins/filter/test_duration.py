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


def test_the_roles_filter_is_the_same_parser_and_names_the_variable():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.oncall.runbooks.plugins.filter.duration_seconds import FilterModule
    to_seconds = FilterModule().filters()['duration_seconds']
    assert to_seconds('2m') == 120 and to_seconds('1h30m') == 5400 and to_seconds(20) == 20
    with pytest.raises(AnsibleFilterError, match='services_wait_timeout must be a duration'):
        to_seconds('soon', 'services_wait_timeout')
