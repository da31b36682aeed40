# -*- coding: utf-8 -*-
"""The host incident runbooks (playbooks/runbooks/) on this machine: disk_space against a
real full file system (a tmpfs of 10 MB that the test fills until ENOSPC)."""

from __future__ import annotations

import os

import pytest

from helpers import run_playbook
from helpers.runbooks import SmallFilesystem, backup_files, ok_run, report, verdicts, worst

MB = 1 << 20


@pytest.fixture()
def small_fs():
    fs = SmallFilesystem(10)
    yield fs
    fs.stop()


def test_disk_space_full_filesystem_cleaned_by_age_then_rotation(small_fs, tmp_path):
    fs = small_fs
    reports = str(tmp_path / 'reports')
    env = {'ONCALL_REPORT_DIR': reports}
    xv = {'disk_space_paths': [fs.path], 'disk_space_log_paths': [os.path.join(fs.path, 'logs')],
          'disk_space_backup_dir': os.path.join(fs.path, 'backups'), 'disk_space_backup_db': 'payment_sandbox',
          'disk_space_hosts': 'lab'}
    rb = 'playbooks/runbooks/disk_space.yml'

    # healthy: six backups (6 MB) and this week's logs
    backups = backup_files(fs, 'payment_sandbox', 6, MB)
    fs.write('logs/api/api.log.1', 100 * 1024, days_old=2)
    healthy = run_playbook(rb, extra_vars=xv, env=env)
    ok_run(healthy)
    assert verdicts(report(reports, 'disk_space'))['disk %s' % fs.path] == 'ok'

    # broken: three rotated logs 10-30 days old, then the live log grows until the disk is full
    for i in (1, 2, 3):
        fs.write('logs/worker/worker.log.%d' % i, 512 * 1024, days_old=10 * i)
    fs.fill('logs/api/api.log')
    assert fs.used_ratio() == 1.0
    broken = run_playbook(rb, extra_vars=xv, env=env)
    ok_run(broken)
    rep = report(reports, 'disk_space')
    assert verdicts(rep)['disk %s' % fs.path] == 'critical'
    largest = [t for t in rep['tables'] if t['title'] == 'Largest files'][0]['rows']
    assert largest[0]['path'] == os.path.join(fs.path, 'logs/api/api.log')
    old = [t for t in rep['tables'] if t['title'].startswith('Logs older')][0]['rows']
    assert sorted(os.path.basename(r['path']) for r in old) == ['worker.log.1', 'worker.log.2', 'worker.log.3']

    switches = dict(xv, disk_space_clean_logs=True, disk_space_rotate_backups=True)
    before = fs.state()
    check = run_playbook(rb, extra_vars=switches, env=env, tags='remediate', check=True)
    ok_run(check)
    assert fs.state() == before, 'check mode changed the file system'

    # logs alone are not enough (85% left): then the three oldest backups go
    fix = run_playbook(rb, extra_vars=switches, env=env, tags='remediate')
    assert ok_run(fix)['changed'] == 2, fix.stdout[-5000:]
    left = fs.state()
    assert not [p for p in left if p.startswith('logs/worker/')]
    assert 'logs/api/api.log' in left and 'logs/api/api.log.1' in left  # young logs stay
    kept = sorted(os.path.basename(p) for p in left if p.endswith('.dump'))
    assert kept == sorted(backups[:3])  # the three newest
    assert fs.used_ratio() < 0.8
    rep = report(reports, 'disk_space')
    assert worst(rep, when='after remediation') == 'ok'

    again = run_playbook(rb, extra_vars=switches, env=env, tags='remediate')
    assert ok_run(again)['changed'] == 0
    assert fs.state() == left


def test_memory_pressure_leaking_process_restarted_once(lab, tmp_path):
    """A real process holding 96 MB against a 64 MB limit; the lab's real Redis for its memory."""
    from helpers.runbooks import Hog
    name = 'oncall-hog'  # a process name, as ps shows it
    rb = 'runbooks/memory_pressure.yml'
    limits = {'name': name, 'warning': '48MB', 'critical': '64MB'}
    # host memory is shared with the other sessions on this machine: not part of the verdicts here
    # (a warning at its critical threshold is refused: the warning could never be seen)
    base = {'memory_pressure_hosts': 'lab', 'memory_pressure_warning': 0.999, 'memory_pressure_critical': 1.0}
    healthy = lab.playbook(rb, extra_vars=dict(base, memory_pressure_processes=[limits]))
    ok_run(healthy)
    assert worst(report(lab.report_dir, 'memory_pressure')) == 'ok'
    hog = Hog(tmp_path, 96)
    r = lab.redis()
    try:
        procs = [dict(limits, restart_command=hog.restart_command)]
        xv = dict(base, memory_pressure_processes=procs)
        broken = lab.playbook(rb, extra_vars=xv)
        ok_run(broken)
        rep = report(lab.report_dir, 'memory_pressure')
        v = verdicts(rep)
        assert v['memory of process ' + name] == 'critical'
        assert v['redis used_memory of maxmemory'] == 'ok'  # the lab's Redis has no maxmemory
        top = [t for t in rep['tables'] if t['title'].startswith('Processes using')][0]['rows']
        assert hog.pid() in [p['pid'] for p in top]

        # Redis near its maxmemory is critical (remediation of the cache is cache_health's)
        used = int(r.info('memory')['used_memory'])
        r.config_set('maxmemory', str(int(used * 1.02)))
        try:
            near = lab.playbook(rb, extra_vars=xv)
            ok_run(near)
            assert verdicts(report(lab.report_dir, 'memory_pressure'))['redis used_memory of maxmemory'] == 'critical'
        finally:
            r.config_set('maxmemory', '0')

        pid = hog.pid()
        off = lab.playbook(rb, extra_vars=xv, tags='remediate')
        assert ok_run(off)['changed'] == 0 and 'memory_pressure_restart=true' in off.stdout
        switch = dict(xv, memory_pressure_restart=True)
        check = lab.playbook(rb, extra_vars=switch, tags='remediate', check=True)
        ok_run(check)
        assert hog.pid() == pid, 'check mode restarted the process'

        fix = lab.playbook(rb, extra_vars=switch, tags='remediate')
        assert ok_run(fix)['changed'] == 1, fix.stdout[-4000:]
        assert hog.pid() != pid and hog.rss() < 48 << 20
        rep = report(lab.report_dir, 'memory_pressure')
        assert verdicts(rep, when='after remediation')['memory of process ' + name] == 'ok'
        assert rep['steps'][0]['results'][0]['applied'][0]['object'] == name

        again = lab.playbook(rb, extra_vars=switch, tags='remediate')
        assert ok_run(again)['changed'] == 0
        assert worst(report(lab.report_dir, 'memory_pressure')) == 'ok'
    finally:
        hog.stop()
