# -*- coding: utf-8 -*-
"""The modules' heavy optional imports (issue 17, fixed cost per call): kafka-python without
botocore, stripe without aiohttp, each in a fresh interpreter (this process may have them
imported already), and the hidden packages importable again afterwards."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers.paths import ROOT  # noqa: E402

PROBE = r'''
import sys
import ansible_collections.oncall.runbooks.plugins.modules.%s as module
loaded = sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('botocore', 'boto3', 'aiohttp', 'httpx'))
print(sorted(set(loaded)))
%s
'''


def run(module, extra=''):
    proc = subprocess.run([sys.executable, '-c', PROBE % (module, extra)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, '.collections')), check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_kafka_module_does_not_load_botocore_and_still_works():
    lines = run('kafka_consumer_lag_info', extra='''
import kafka.sasl.msk as msk
print(msk.BotoSession)
from kafka import KafkaAdminClient
from ansible_collections.oncall.runbooks.plugins.module_utils.kafka import lag
print(lag.HAS_KAFKA, KafkaAdminClient.__name__)
import botocore.session  # hidden only while kafka was imported
print('botocore importable')
''')
    assert lines == ['[]', 'None', 'True KafkaAdminClient', 'botocore importable']


def test_stripe_module_does_not_load_aiohttp_and_keeps_its_sync_client():
    lines = run('stripe_reconcile', extra='''
from stripe import _http_client
print(module.HAS_STRIPE, _http_client._default_sync_client.__name__, _http_client._default_async_client.__name__)
import aiohttp
print('aiohttp importable')
''')
    assert lines == ['[]', 'True RequestsClient NoImportFoundAsyncClient', 'aiohttp importable']
