# -*- coding: utf-8 -*-
"""The probes' one URL check (module_utils/common/urls.py): http(s) only, never a password."""

from __future__ import annotations

import pytest
from helpers.web import loopback_http

from ansible_collections.oncall.runbooks.plugins.module_utils.common.urls import UrlError, check_http_url


@pytest.mark.parametrize('url', ['http://127.0.0.1:8080/health', 'https://app.example/health?x=1',
                                 'http://monitor@127.0.0.1/metrics'])
def test_http_urls_pass(url):
    assert check_http_url(url, 'health_url') == url


@pytest.mark.parametrize('url,words', [
    ('file:///etc/passwd', 'must be an http:// or https:// URL'),
    ('ftp://host/x', 'must be an http:// or https:// URL'),
    ('http://user:s3cr3t@127.0.0.1/health', 'must not carry a password'),
    ('http://127.0.0.1:99999/', 'not a valid URL'),
    ('', 'must be an http:// or https:// URL')])
def test_refused_urls_are_one_sentence_without_the_secret(url, words):
    with pytest.raises(UrlError) as exc:
        check_http_url(url, 'health_url')
    msg = str(exc.value)
    assert words in msg and msg.startswith('health_url') and 's3cr3t' not in msg and '\n' not in msg


@pytest.fixture(scope='module')
def web():
    """A real HTTP server on loopback: /ok 200, /broken 500 with a body, /moved 302."""
    def answer(path):
        code, body = {'/ok': (200, b'fine'), '/broken': (500, b'db down'), '/moved': (302, b'')}.get(path, (404, b'no'))
        return code, body, {'Location': '/ok'} if code == 302 else {}
    with loopback_http(answer) as base:
        yield base


def test_one_exchange_under_both_probes(web):
    """http_check's probe and the services/deploy probe share one request (common.urls.exchange):
    an error status keeps its body, a redirect is an answer and is not followed, no answer is an
    error, and a URL that is not http(s) is refused before anything is sent."""
    from ansible_collections.oncall.runbooks.plugins.module_utils.common.urls import exchange
    from ansible_collections.oncall.runbooks.plugins.module_utils.host import http
    from ansible_collections.oncall.runbooks.plugins.module_utils.services import health

    assert {k: exchange(web + '/ok', timeout=5)[k] for k in ('status', 'body', 'error')} == \
        {'status': 200, 'body': 'fine', 'error': None}
    assert exchange(web + '/broken', timeout=5)['body'] == 'db down'
    assert exchange(web + '/moved', timeout=5)['status'] == 302
    closed = 'http://127.0.0.1:1/'
    gone = exchange(closed, timeout=5)
    assert gone['status'] is None and gone['error']
    with pytest.raises(UrlError):
        exchange('file:///etc/passwd', 'health_url')

    # a server that answers garbage is an error, not a crash of the probe
    import socket
    import threading
    garbage = socket.socket()
    garbage.bind(('127.0.0.1', 0))
    garbage.listen(4)

    def answer_garbage():
        for _i in range(3):
            conn = garbage.accept()[0]
            conn.recv(4096)
            conn.sendall(b'SSH-2.0-not-http\r\n\r\n')
            conn.close()
    threading.Thread(target=answer_garbage, daemon=True).start()
    odd = 'http://127.0.0.1:%d/' % garbage.getsockname()[1]
    assert exchange(odd, timeout=5)['error'] == 'the answer is not HTTP (BadStatusLine)'
    assert health.probe(odd)['why'] == 'no answer (the answer is not HTTP (BadStatusLine))'
    assert http.probe({'url': odd})['why'] == 'no answer: the answer is not HTTP (BadStatusLine)'
    garbage.close()

    assert health.probe(web + '/broken')['why'] == 'status 500'
    assert health.probe(closed)['why'].startswith('no answer (')
    assert health.probe(web + '/ok')['ok'] is True
    check = http.probe({'url': web + '/broken', 'status': [200, 204]})
    assert check['why'] == 'status 500, expected 200 or 204' and check['body_excerpt'] == 'db down'
    assert http.probe({'url': closed})['why'].startswith('no answer: ')
    assert http.probe({'url': web + '/ok', 'body_contains': 'fine'})['ok'] is True
