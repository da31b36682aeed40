# -*- coding: utf-8 -*-
"""The probes' one URL check (module_utils/common/urls.py): http(s) only, never a password."""

from __future__ import annotations

import pytest

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
