# -*- coding: utf-8 -*-
"""The Stripe reconciliation diff (stripe/reconcile.compare, summarize, parse_window) on orders
and PaymentIntents made up here: every kind of discrepancy, and what is not one. The same code
runs against localstripe and PostgreSQL in tests/integration/test_stripe_reconcile.py."""
from __future__ import annotations

import datetime

import pytest

from ansible_collections.oncall.runbooks.plugins.module_utils.stripe import reconcile as rc

STATUS_MAP = {'paid': 'succeeded', 'pending': ['processing', 'requires_payment_method'], 'canceled': 'canceled'}


def order(oid, pi, amount=1000, currency='USD', status='paid'):
    return {'id': oid, 'payment_intent': pi, 'amount': amount, 'currency': currency, 'status': status}


def intent(pid, amount=1000, currency='usd', status='succeeded', created=0, **metadata):
    return {'id': pid, 'amount': amount, 'currency': currency, 'status': status, 'created': created,
            'metadata': metadata}


def diff(orders, pis):
    return rc.compare(orders, pis, STATUS_MAP, 'order_id')


def kinds(found):
    return sorted((d['kind'], d['order'], d['payment_intent']) for d in found)


def test_orders_that_match_their_payment_intents_give_no_discrepancy():
    # the currency is compared without case: orders say USD, Stripe says usd
    assert diff([order(1, 'pi_1'), order(2, 'pi_2', status='pending')],
                [intent('pi_1', order_id='1'), intent('pi_2', status='processing')]) == []


def test_each_kind_of_discrepancy_is_found_once_with_its_figures():
    orders = [order(1, 'pi_gone'), order(2, 'pi_2', amount=1500), order(3, 'pi_3', currency='EUR'),
              order(4, 'pi_4', status='pending')]
    pis = [intent('pi_2'), intent('pi_3'), intent('pi_4'), intent('pi_stray', amount=700, order_id='99')]
    found = diff(orders, pis)
    assert kinds(found) == [('amount_mismatch', '2', 'pi_2'), ('currency_mismatch', '3', 'pi_3'),
                            ('missing_in_stripe', '1', 'pi_gone'), ('missing_order', '99', 'pi_stray'),
                            ('status_drift', '4', 'pi_4')]
    by = dict((d['kind'], d) for d in found)
    assert by['amount_mismatch']['detail'] == 'order 1500, Stripe 1000'
    assert by['currency_mismatch']['currency'] == 'eur'
    assert by['status_drift']['fix_status'] == 'paid' and by['status_drift']['stripe_status'] == 'succeeded'
    assert by['missing_order']['detail'] == 'succeeded PaymentIntent with no order (metadata order_id=99)'


def test_one_payment_intent_on_two_orders_is_a_duplicate_naming_both():
    found = diff([order(1, 'pi_1'), order(2, 'pi_1')], [intent('pi_1')])
    assert [(d['kind'], d['order']) for d in found] == [('duplicate_charge', '1, 2')]


def test_an_order_charged_twice_keeps_the_referenced_charge_and_names_the_extra():
    # pi_late is the one the order points at, so pi_early is the extra, though it came first
    found = diff([order(7, 'pi_late')], [intent('pi_early', created=100, order_id='7'),
                                         intent('pi_late', created=200, order_id='7')])
    assert [(d['kind'], d['payment_intent'], d['keep']) for d in found] == [('duplicate_charge', 'pi_early', 'pi_late')]
    assert found[0]['detail'] == 'order 7 charged 2 times; pi_late is kept'


def test_an_order_charged_twice_with_no_reference_keeps_the_first_charged():
    pis = [intent('pi_b', created=200, order_id='8'), intent('pi_a', created=100, order_id='8')]
    found = diff([order(8, None, status='pending')], pis)
    assert [(d['kind'], d['payment_intent'], d['keep']) for d in found] == [('duplicate_charge', 'pi_b', 'pi_a')]


def test_payment_intents_that_did_not_succeed_are_not_missing_orders():
    assert diff([], [intent('pi_x', status='canceled'), intent('pi_y', status='requires_payment_method')]) == []


def test_a_succeeded_intent_whose_order_exists_under_its_metadata_is_not_a_missing_order():
    # the order has no payment_intent recorded yet, but the metadata names it
    assert kinds(diff([order(5, None, status='pending')], [intent('pi_5', order_id='5')])) == []


def test_an_order_status_outside_the_map_is_not_compared():
    assert diff([order(6, 'pi_6', status='refunded')], [intent('pi_6', status='canceled')]) == []


def test_summarize_counts_each_kind_and_adds_amounts_per_currency():
    found = diff([order(1, 'gone', amount=500), order(2, 'gone2', amount=250, currency='eur'),
                  order(3, 'gone3', amount=100)], [])
    summary = rc.summarize(found)
    assert set(summary) == set(rc.KINDS)
    assert summary['missing_in_stripe'] == {'count': 3, 'amounts': {'usd': 600, 'eur': 250}}
    assert summary['amount_mismatch'] == {'count': 0, 'amounts': {}}


NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.timezone.utc)


def test_the_window_defaults_to_the_last_day():
    since, until, label = rc.parse_window(None, None, False, now=NOW)
    assert until - since == 86400 and until == NOW.timestamp()
    assert label == '2026-11-26T12:00:00+00:00 to 2026-11-27T12:00:00+00:00'


def test_the_window_takes_durations_and_iso_times_naive_ones_as_utc():
    since, until, label = rc.parse_window('2026-11-20T00:00:00', '2h', False, now=NOW)
    assert label.startswith('2026-11-20T00:00:00+00:00 to ')
    assert since == datetime.datetime(2026, 11, 20, tzinfo=datetime.timezone.utc).timestamp()
    assert until == NOW.timestamp() - 7200


def test_full_history_has_no_bounds():
    assert rc.parse_window(None, None, True, now=NOW) == (None, None, 'full history')


@pytest.mark.parametrize('since,until,full,message', [
    ('1d', None, True, 'do not combine it with since or until'),
    ('yesterday', None, False, 'since must be a duration (1h, 7d) or an ISO 8601 time'),
    ('1h', '2h', False, 'must be before until'),
])
def test_a_bad_window_is_refused_with_one_sentence(since, until, full, message):
    with pytest.raises(rc.ReconcileError, match=message.replace('(', r'\(').replace(')', r'\)')):
        rc.parse_window(since, until, full, now=NOW)
