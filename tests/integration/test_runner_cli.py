# -*- coding: utf-8 -*-
"""The module runner through the real `ansible` CLI: a bug in the collection's own code is
reported as an internal error with its traceback, never as a failure of what the module
talks to; an expected refusal stays one sentence."""

from __future__ import annotations

from helpers import run_module


def test_a_bug_path_is_an_internal_error_with_its_traceback(monkeypatch):
    # the user asked for tracebacks (ansible-core 2.19 shows a module's traceback only then)
    monkeypatch.setenv('ANSIBLE_DISPLAY_TRACEBACK', 'error')
    # checks[].status is not validated before int() today: a real code path of ours that breaks
    res = run_module('http_check', {'checks': [{'name': 'app', 'url': 'http://127.0.0.1:9/health',
                                                'status': 'ok'}]})
    assert res.failed, res.result
    assert res['msg'] == ("internal error in oncall.runbooks.http_check: ValueError: invalid literal for int() "
                          "with base 10: 'ok'; please report it"), res['msg']
    tb = str(res['exception'])
    assert 'Traceback' in tb and 'ValueError' in tb and 'http.py' in tb, tb


def test_without_traceback_display_the_internal_error_is_still_one_sentence(monkeypatch):
    monkeypatch.delenv('ANSIBLE_DISPLAY_TRACEBACK', raising=False)
    res = run_module('http_check', {'checks': [{'url': 'http://127.0.0.1:9/health', 'status': 'ok'}]})
    assert res.failed and res['msg'].startswith('internal error in oncall.runbooks.http_check: ValueError: ')
    assert res['msg'].endswith('; please report it') and '\n' not in res['msg']


def test_an_expected_refusal_is_one_sentence_not_an_internal_error():
    res = run_module('http_check', {'checks': [{'url': 'file:///etc/passwd'}]})
    assert res.failed
    assert res['msg'] == 'checks[0].url must be an http:// or https:// URL with a host, not file:///etc/passwd'
