# -*- coding: utf-8 -*-
"""Issue 13 items 3 (command lines, outside PostgreSQL), 4 (paths) and 5 (URLs): each attack is
tried for real - on the real file system, against a real HTTP server, with the real pm2 - and
must fail with one sentence and nothing changed."""

from __future__ import annotations

import hashlib
import os
import re
import time

import pytest

from helpers import run_module

OLD = time.time() - 90 * 86400


def tree(root):
    """{relative path: (kind, sha256 or link target)} of everything under root, links unfollowed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = ('link', os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ('dir', '')
            else:
                with open(path, 'rb') as fh:
                    out[rel] = ('file', hashlib.sha256(fh.read()).hexdigest())
    return out


def old_file(path, text='old log line\n'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as fh:
        fh.write(text)
    os.utime(path, (OLD, OLD))


def one_sentence(msg):
    assert msg and '\n' not in msg and 'Traceback' not in msg, msg
    return msg


# ---- file_retention ------------------------------------------------------------------------

@pytest.fixture()
def victim(tmp_path):
    """A directory the attacker wants emptied: old *.log files that must survive."""
    d = tmp_path / 'victim'
    for name in ('precious.log', 'sub/also.log'):
        old_file(str(d / name))
    return d


def test_file_retention_refuses_a_root_that_is_a_link_and_removes_nothing(tmp_path, victim):
    link = tmp_path / 'logs'
    os.symlink(str(victim), str(link))
    before = tree(str(tmp_path))
    for check in (True, False):
        res = run_module('file_retention', {'paths': [str(link)], 'older_than': '30d'}, check=check)
        assert res.failed, res.result
        msg = one_sentence(res['msg'])
        assert msg == 'refusing to clean %s: it is a symbolic link (to %s); name the directory itself' % (link, victim)
        assert tree(str(tmp_path)) == before


@pytest.mark.parametrize('path', ['relative/logs', '{tmp}/logs/../victim', '/etc', '/var/log/..', '/tmp'])
def test_file_retention_refuses_relative_dotdot_and_system_roots(tmp_path, victim, path):
    os.makedirs(str(tmp_path / 'logs'))
    before = tree(str(tmp_path))
    res = run_module('file_retention', {'paths': [path.format(tmp=tmp_path)]})
    assert res.failed and one_sentence(res['msg']).startswith('refusing to clean '), res.result
    assert tree(str(tmp_path)) == before


def test_file_retention_never_follows_links_inside_its_root(tmp_path, victim):
    logs = tmp_path / 'logs'
    old_file(str(logs / 'app.log'))
    os.symlink(str(victim), str(logs / 'linked-dir'))             # a directory link
    os.symlink(str(victim / 'precious.log'), str(logs / 'x.log'))  # a file link matching *.log
    res = run_module('file_retention', {'paths': [str(logs)]})
    assert not res.failed, res.result
    assert res['removed'] == [str(logs / 'app.log')]
    assert sorted(os.listdir(str(logs))) == ['linked-dir', 'x.log']
    assert sorted(tree(str(victim))) == ['precious.log', 'sub', 'sub/also.log']


def test_file_retention_a_directory_swapped_for_a_link_after_the_plan_is_not_followed(tmp_path, victim):
    """The race find -delete loses: between the listing and the removal, a subdirectory of the
    root is replaced by a link to another directory holding files of the same names."""
    from ansible_collections.oncall.runbooks.plugins.module_utils.host import files
    logs = tmp_path / 'logs'
    old_file(str(logs / 'sub' / 'also.log'))
    old_file(str(logs / 'top.log'))
    plan = files.candidates([str(logs)], ['*.log'], [], 30 * 86400)
    assert sorted(f['path'] for f in plan) == [str(logs / 'sub' / 'also.log'), str(logs / 'top.log')]
    os.rename(str(logs / 'sub'), str(tmp_path / 'moved-away'))
    os.symlink(str(victim / 'sub'), str(logs / 'sub'))
    removed, _freed, kept = files.remove(plan, 30 * 86400)
    assert removed == [str(logs / 'top.log')]
    assert [k['path'] for k in kept] == [str(logs / 'sub' / 'also.log')]
    assert os.path.exists(str(victim / 'sub' / 'also.log'))
    assert os.path.exists(str(tmp_path / 'moved-away' / 'also.log'))


# ---- runbook_report ------------------------------------------------------------------------

def report_args(dest, **kw):
    args = {'name': 'drill', 'title': 'Drill', 'dest': str(dest),
            'findings': [{'object': 'disk /', 'figure': '41%', 'threshold': '< 80%', 'verdict': 'ok'}]}
    args.update(kw)
    return args


@pytest.mark.parametrize('name', ['../x', '../../etc/cron.d/x', 'a/b', '.hidden', '', 'x y', '-x', 'drill-check',
                                  'x' * 101, 'caf\u00e9'])
def test_runbook_report_refuses_a_name_that_is_not_a_plain_name_and_writes_nothing(tmp_path, name):
    dest = tmp_path / 'reports'
    res = run_module('runbook_report', report_args(dest, name=name))
    assert res.failed, res.result
    assert one_sentence(res['msg']).startswith('name must be 1 to 100 letters'), res['msg']
    assert tree(str(tmp_path)) == {}


def test_runbook_report_a_latest_link_is_replaced_and_its_target_never_written(tmp_path):
    dest = tmp_path / 'reports'
    dest.mkdir()
    victim = tmp_path / 'authorized_keys'
    victim.write_text('ssh-ed25519 AAAA operator\n')
    for ext in ('md', 'json'):
        os.symlink(str(victim), str(dest / ('drill-latest.' + ext)))
    res = run_module('runbook_report', report_args(dest))
    assert not res.failed, res.result
    assert victim.read_text() == 'ssh-ed25519 AAAA operator\n'
    for ext in ('md', 'json'):
        latest = dest / ('drill-latest.' + ext)
        assert not os.path.islink(str(latest)) and latest.read_text().strip()
    assert res['latest_markdown_path'] == str(dest / 'drill-latest.md')
    assert res['markdown_path'].startswith(str(dest / 'drill-2')) and os.path.isfile(res['markdown_path'])
    assert not [n for n in os.listdir(str(dest)) if n.endswith('.tmp')]


def test_runbook_report_same_second_reports_never_overwrite_each_other_nor_follow_a_link(tmp_path):
    import importlib
    rr = importlib.import_module('ansible_collections.oncall.runbooks.plugins.modules.runbook_report')
    dest = tmp_path / 'reports'
    dest.mkdir()
    victim = tmp_path / 'victim'
    victim.write_text('keep\n')
    # an attacker who guesses the next timestamp plants links at its names
    os.symlink(str(victim), str(dest / 'drill-20260101T000000Z.json'))
    first = rr.write_report(str(dest), 'drill', '20260101T000000Z', False, '{"n": 1}\n', '# one\n')
    second = rr.write_report(str(dest), 'drill', '20260101T000000Z', False, '{"n": 2}\n', '# two\n')
    assert victim.read_text() == 'keep\n'
    assert first['json_path'] == str(dest / 'drill-20260101T000000Z-2.json')
    assert second['json_path'] == str(dest / 'drill-20260101T000000Z-3.json')
    assert open(first['markdown_path']).read() == '# one\n' and open(second['markdown_path']).read() == '# two\n'
    assert open(str(dest / 'drill-latest.json')).read() == '{"n": 2}\n'


@pytest.mark.parametrize('dest', ['/etc', '/usr/share/x', '/proc/self'])
def test_runbook_report_refuses_a_system_directory(dest):
    res = run_module('runbook_report', report_args(dest))
    assert res.failed and one_sentence(res['msg']).startswith('dest %s is a system directory' % dest), res.result


def test_runbook_report_dest_link_is_resolved_once(tmp_path):
    real = tmp_path / 'real'
    real.mkdir()
    os.symlink(str(real), str(tmp_path / 'reports'))
    res = run_module('runbook_report', report_args(tmp_path / 'reports'))
    assert not res.failed, res.result
    assert res['latest_json_path'] == str(real / 'drill-latest.json') and os.path.isfile(res['latest_json_path'])


def test_runbook_report_check_run_never_replaces_the_latest_report_of_a_real_run(tmp_path):
    """As every playbook calls it: check_mode false on the task, check_mode_run from
    ansible_check_mode; and as a module run under Ansible's own --check."""
    import json
    from helpers import run_playbook
    dest = tmp_path / 'reports'
    play = tmp_path / 'report.yml'
    play.write_text('''---
- name: A run that leaves its report
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Write the report
      oncall.runbooks.runbook_report:
        name: drill
        title: Drill
        dest: %s
        check_mode_run: "{{ ansible_check_mode }}"
        started: "{{ drill_started | default('') }}"
        findings: [{object: "disk /", figure: "{{ drill_figure }}", threshold: "< 80%%", verdict: ok}]
      check_mode: false
''' % dest)
    real = run_playbook(str(play), extra_vars={'drill_figure': 'real'}, inventory='localhost,')
    assert real.returncode == 0, real.stdout[-3000:]
    latest = dest / 'drill-latest.json'
    before = latest.read_text()
    assert json.loads(before)['mode'] == 'apply'
    dry = run_playbook(str(play), extra_vars={'drill_figure': 'dry'}, inventory='localhost,', check=True)
    assert dry.returncode == 0, dry.stdout[-3000:]
    assert latest.read_text() == before and (dest / 'drill-latest.md').read_text().count('real') == 1
    check = json.loads((dest / 'drill-check-latest.json').read_text())
    assert check['mode'].startswith('check') and check['findings'][0]['figure'] == 'dry'
    # Ansible's own --check on the module, and check_mode_run without it
    for kw in ({'check': True}, {}):
        args = report_args(dest, findings=[{'object': 'o', 'figure': 'module', 'verdict': 'ok'}])
        if not kw:
            args['check_mode_run'] = True
        res = run_module('runbook_report', args, **kw)
        assert not res.failed and res['latest_json_path'] == str(dest / 'drill-check-latest.json'), res.result
        assert os.path.basename(res['json_path']).startswith('drill-check-2')
        assert latest.read_text() == before
    stamped = sorted(n for n in os.listdir(str(dest)) if n.endswith('.json') and 'latest' not in n)
    assert len([n for n in stamped if n.startswith('drill-check-')]) == 3 and len(stamped) == 4


@pytest.mark.parametrize('started', [None, '', '   '])
def test_runbook_report_started_is_always_filled(tmp_path, started):
    import json
    args = report_args(tmp_path)
    if started is not None:
        args['started'] = started
    before = time.strftime('%Y-%m-%dT%H:%M', time.gmtime())
    res = run_module('runbook_report', args)
    assert not res.failed, res.result
    rep = json.load(open(res['json_path']))
    assert rep['started'] and rep['started'][:16] >= before and rep['started'] <= rep['finished']
    assert '- **Started:** %s' % rep['started'] in res['markdown']
    given = run_module('runbook_report', report_args(tmp_path, started='2026-01-01T00:00:00Z'))
    assert '- **Started:** 2026-01-01T00:00:00Z' in given['markdown']


# ---- HTTP probes: http and https only, redirects never followed ------------------------------

class Server(object):
    """A real HTTP server on loopback: /health answers 200, /to-file and /to-ftp redirect (302)
    to file:///etc/passwd and ftp://127.0.0.1/, /metrics answers Prometheus counters; every
    request is recorded."""

    def __init__(self):
        import http.server
        import threading
        seen = self.seen = []
        headers = self.headers = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                seen.append(self.path)
                headers.append(dict(self.headers))
                target = {'/to-file': 'file:///etc/passwd', '/to-ftp': 'ftp://127.0.0.1/'}.get(self.path)
                body = b'app_requests_total 10\napp_errors_total 0\n' if self.path == '/metrics' else b'{"status":"ok"}'
                self.send_response(302 if target else 200)
                if target:
                    self.send_header('Location', target)
                    body = b''
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def server():
    srv = Server()
    yield srv
    srv.stop()


PASSWD = 'root:x:0:0'
BAD_URLS = ['file:///etc/passwd', 'FILE:///etc/passwd', 'ftp://127.0.0.1/etc/passwd', 'data:text/plain;base64,cm9vdDp4OjA6MA==',
            '/etc/passwd', 'http:///etc/passwd', 'http://127.0.0.1:notaport/']


@pytest.mark.parametrize('url', BAD_URLS)
def test_http_check_refuses_anything_but_http_before_fetching_anything(server, url):
    res = run_module('http_check', {'checks': [{'name': 'first', 'url': server.url + '/health'},
                                               {'name': 'evil', 'url': url}]})
    assert res.failed, res.result
    assert one_sentence(res['msg']).startswith('checks[1].url '), res['msg']
    assert 'http:// or https://' in res['msg'] or 'not a valid URL' in res['msg']
    assert PASSWD not in res.stdout + res.stderr
    assert server.seen == [], 'a check ran before the bad URL was refused'


@pytest.mark.parametrize('path', ['/to-file', '/to-ftp'])
def test_http_check_a_redirect_to_another_scheme_is_an_answer_never_followed(server, path):
    res = run_module('http_check', {'checks': [{'name': 'redirected', 'url': server.url + path}]})
    assert not res.failed, res.result
    check = res['checks'][0]
    assert check['status'] == 302 and not check['ok'] and check['why'] == 'status 302, expected 200'
    assert PASSWD not in res.stdout + res.stderr and server.seen == [path]


def test_http_check_a_password_in_the_url_is_refused_and_never_shown(server):
    # a probe's URL is echoed in results, reports and -vvv output: it never carries a password
    url = server.url.replace('http://', 'http://probe:s3cr3t-pw@') + '/health'
    res = run_module('http_check', {'checks': [{'url': url}]})
    assert res.failed and one_sentence(res['msg']).startswith('checks[0].url must not carry a password'), res.result
    assert 's3cr3t-pw' not in res['msg'] and 'probe:********@' in res['msg']
    assert server.seen == []  # refused before anything was fetched


def test_http_check_credentials_in_headers_are_sent_and_never_shown(server):
    token, cookie = 'Bearer tok-s3cr3t-1', 'sid=cookie-s3cr3t-2'
    res = run_module('http_check', {'checks': [{'url': server.url + '/health', 'headers': {
        'Authorization': token, 'Cookie': cookie, 'X-Request-Source': 'oncall-probe'}}]},
        verbosity=3)
    assert not res.failed and res['checks'][0]['ok'], res.result
    sent = server.headers[0]
    assert sent['Authorization'] == token and sent['Cookie'] == cookie
    out = res.stdout + res.stderr
    assert 'tok-s3cr3t-1' not in out and 'cookie-s3cr3t-2' not in out
    assert 'oncall-probe' in out  # an ordinary header is not hidden


def json_dump(value):
    import json
    return json.dumps(value)


@pytest.mark.parametrize('option', ['health_url', 'metrics_url'])
def test_service_watch_refuses_a_file_url_before_watching(server, option):
    args = {'health_url': server.url + '/health', 'period': '1s', 'interval': '1s'}
    args[option] = 'file:///etc/passwd'
    res = run_module('service_watch', args)
    assert res.failed and one_sentence(res['msg']).startswith(option + ' must be an http:// or https:// URL'), res.result
    assert PASSWD not in res.stdout + res.stderr and server.seen == []


def test_service_watch_a_health_url_redirecting_to_a_file_fails_its_checks(server):
    res = run_module('service_watch', {'health_url': server.url + '/to-file', 'period': '1s', 'interval': '1s'})
    assert res.failed and 'failed health check(s)' in res['msg'] and 'status 302' in res['msg'], res.result
    assert PASSWD not in res.stdout + res.stderr


# ---- pm2_process: a name pm2 would read as something else ----------------------------------

@pytest.fixture()
def pm2_two_apps(tmp_path):
    """A pm2 daemon of its own with two real applications: `victim` (pm_id 0) and `all`."""
    from helpers.app import PM2, Pm2Home
    home = Pm2Home()
    script = tmp_path / 'idle.js'
    script.write_text('setInterval(function () {}, 1000);\n')
    for name in ('victim', 'all'):
        out = home.pm2('start', str(script), '--name', name)
        assert out.returncode == 0, out.stdout + out.stderr
    yield home, {'pm2_bin': PM2, 'pm2_home': home.home, 'min_uptime': '100ms', 'wait_timeout': '20s'}, str(script)
    home.stop()


def pm2_state(home):
    import json
    out = home.pm2('jlist').stdout
    return sorted((p['pm_id'], p['name'], p['pid'], p['pm2_env']['restart_time'], p['pm2_env']['status'])
                  for p in json.loads(out[out.find('['):]))


PM2_BAD_NAMES = [('all', 'restarted'), ('all', 'stopped'), ('0', 'started'), ('0', 'restarted'), ('/vic/', 'restarted'),
                 ('--help', 'stopped'), ('-s', 'restarted'), ('ecosystem.config.js', 'restarted'),
                 ('apps.json', 'started'), ('a b', 'stopped')]


def test_pm2_process_refuses_a_name_pm2_reads_as_ids_all_regex_or_options(pm2_two_apps):
    """Before the fix, `name: all, state: restarted` restarted every application (pm2 restart all),
    and an application started as `0` was then restarted as pm_id 0, another application."""
    home, base, script = pm2_two_apps
    before = pm2_state(home)
    for name, state in PM2_BAD_NAMES:
        res = run_module('pm2_process', dict(base, name=name, state=state, script=script))
        assert res.failed, (name, state, res.result)
        assert one_sentence(res['msg']).startswith('name must be a plain pm2 application name'), res['msg']
    assert pm2_state(home) == before


def test_pm2_process_refuses_env_names_that_are_not_variables_or_redirect_pm2(pm2_two_apps, tmp_path):
    """Before the fix, env PM2_HOME started the application under another pm2 daemon, started
    for it in that directory, out of sight of the one the module observes."""
    home, base, script = pm2_two_apps
    before = pm2_state(home)
    for option, env in (('env', {'PM2_HOME': str(tmp_path / 'elsewhere')}), ('secret_env', {'A=B': 'x'}), ('env', {'-x': '1'})):
        res = run_module('pm2_process', dict(base, name='newapp', script=script, **{option: env}))
        assert res.failed and one_sentence(res['msg']).startswith(option + ' names must be environment variable names')
    assert pm2_state(home) == before and not os.path.exists(str(tmp_path / 'elsewhere'))


def test_pm2_process_refuses_a_file_health_url_before_restarting(pm2_two_apps):
    home, base, script = pm2_two_apps
    before = pm2_state(home)
    res = run_module('pm2_process', dict(base, name='victim', state='restarted', health_url='file:///etc/passwd'))
    assert res.failed and one_sentence(res['msg']) == (
        "health_url must be an http:// or https:// URL with a host, not file:///etc/passwd"), res.result
    assert pm2_state(home) == before and PASSWD not in res.stdout + res.stderr


def test_pm2_process_values_are_passed_as_option_values(pm2_two_apps, tmp_path):
    """cwd and node_args go as --cwd=... and --node-args=...: a value that starts with '-' stays a value."""
    home, base, script = pm2_two_apps
    cwd = tmp_path / '-w'
    cwd.mkdir()
    res = run_module('pm2_process', dict(base, name='web.v2', script=script, cwd=str(cwd),
                                         node_args='--max-old-space-size=64'))
    assert not res.failed, res.result
    import json
    out = home.pm2('jlist').stdout
    app = [p for p in json.loads(out[out.find('['):]) if p['name'] == 'web.v2']
    assert len(app) == 1 and app[0]['pm2_env']['pm_cwd'] == str(cwd)
    assert app[0]['pm2_env']['node_args'] == ['--max-old-space-size=64']
    assert [p[1] for p in pm2_state(home)].count('victim') == 1


# ---- cert_renew's dns-01 hook: argv only, a domain never starts an option --------------------

def test_acme_dns_hook_runs_with_argv_and_refuses_a_domain_that_is_not_a_dns_name(tmp_path):
    import sys
    from ansible_collections.oncall.runbooks.plugins.module_utils.certs import acme_issue
    from ansible_collections.oncall.runbooks.plugins.module_utils.certs.x509 import CertError
    hook, log = tmp_path / 'hook.py', tmp_path / 'hook.log'
    hook.write_text('#!%s\nimport json, os, sys\nopen(%r, "a").write(json.dumps([sys.argv[1:], os.environ["ACME_VALUE"]]) + "\\n")\n'
                    % (sys.executable, str(log)))
    os.chmod(str(hook), 0o755)
    value = '-' + 'A' * 42  # a base64url digest may start with '-': it stays one argument
    acme_issue._hook(str(hook), 'add', 'xn--caf-dma.oncall.test', value, 30)
    assert log.read_text() == '[["add", "xn--caf-dma.oncall.test", "%s"], "%s"]\n' % (value, value)
    for domain in ('--help', '-x.oncall.test', 'a b.test', 'x.test;id', '$(id).test', '', 'a..test'):
        with pytest.raises(CertError) as exc:
            acme_issue._hook(str(hook), 'add', domain, value, 30)
        assert one_sentence(str(exc.value)).endswith('is not a DNS name')
    with pytest.raises(CertError):
        acme_issue._hook(str(hook), 'add', 'ok.test', 'a b', 30)
    assert len(log.read_text().splitlines()) == 1  # the hook never ran for a refused value


# ---- redis_failure.yml: a node's announced address on the restart command line -------------

def test_redis_failure_never_puts_an_announced_address_that_is_an_option_on_the_command_line(tmp_path):
    """A node announces `-oProxyCommand=sh${IFS}/x` as its address (cluster-announce-ip) and goes
    down: before the fix, `ssh {host} ...` as restart command became ssh -oProxyCommand=..., a
    shell command run by ssh. The node is now left alone with one sentence; a healthy address
    still is restarted."""
    import json
    import sys
    import redis
    from helpers import run_playbook
    from helpers.redis_cluster import RedisCluster
    cluster = RedisCluster()
    try:
        replicas = [p for p, (role, _m) in cluster.roles().items() if role != 'primary']
        evil, plain = replicas[0], replicas[1]
        redis.Redis(port=evil).config_set('cluster-announce-ip', '-oProxyCommand=sh${IFS}/x')
        seed = [p for p in cluster.ports if p not in (evil, plain)][0]
        # every node the runbook may ask (not only the seed) must know the announced address by
        # gossip before the node goes down: one that still lists the real address would have the
        # runbook restart that address too
        deadline = time.time() + 20
        while not all('-oProxyCommand' in redis.Redis(port=p, decode_responses=True).execute_command('CLUSTER', 'NODES')
                      for p in cluster.ports if p != evil):
            assert time.time() < deadline, 'the announced address did not propagate to every node'
            time.sleep(0.2)
        cluster.stop_node(evil)
        cluster.stop_node(plain)
        record = tmp_path / 'argv.jsonl'
        recorder = tmp_path / 'restart.py'
        recorder.write_text('import json, sys\nopen(%r, "a").write(json.dumps(sys.argv[1:]) + "\\n")\n' % str(record))
        run = run_playbook('playbooks/runbooks/redis_failure.yml', tags='remediate', env={'ONCALL_REPORT_DIR': str(tmp_path)},
                           extra_vars={'oncall_redis_port': seed, 'redis_failure_restart_confirm': True,
                                       'redis_failure_verify_retries': 1,
                                       'redis_failure_restart_command': '%s %s {host} {port}' % (sys.executable, recorder)})
        calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
        # what went wrong comes last: CI's summary line keeps the end of the message
        said = [line.strip() for line in run.stdout.splitlines() if 'not restarting' in line or 'unreachable' in line]
        assert calls == [['127.0.0.1', str(plain)]], '%s\nevil=%d plain=%d seed=%d restarted=%r said=%r' % (
            run.stdout[-3000:], evil, plain, seed, calls, said)
        assert ('not restarting "-oProxyCommand=sh${IFS}/x:%d": the address a node announces goes on the restart '
                'command line only when it is a host name or IP address' % evil) in ' '.join(run.stdout.split()), (
                    '%s\nevil=%d plain=%d said=%r' % (run.stdout[-3000:], evil, plain, said))
    finally:
        cluster.stop()


# ---- services role, systemd backend: the unit name on systemctl's command line ---------------

SERVICES_PLAY = '''---
- name: services role, systemd backend
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the entry point
      ansible.builtin.include_role:
        name: oncall.runbooks.services
        tasks_from: status
'''


def test_services_systemd_refuses_a_unit_name_that_starts_an_option(tmp_path):
    """`-Hroot@elsewhere` as services_name made `systemctl show ... -Hroot@elsewhere.service`,
    systemctl run over ssh on another machine. It is refused before systemctl runs."""
    from helpers import run_playbook
    play = tmp_path / 'services.yml'
    play.write_text(SERVICES_PLAY)
    for name in ('-Hroot@elsewhere', '--host=elsewhere', 'a b'):
        run = run_playbook(str(play), inventory='localhost,',
                           extra_vars={'services_backend': 'systemd', 'services_name': name})
        out = ' '.join(run.stdout.split())
        assert run.returncode != 0 and 'services_name must be a systemd unit name' in out, run.stdout[-3000:]
        tasks = re.findall(r'TASK \[([^\]]*)\]', run.stdout)
        assert tasks[-1].endswith('Check that services_name is a unit name'), tasks  # systemctl never ran
    ok = run_playbook(str(play), inventory='localhost,', extra_vars={'services_backend': 'systemd',
                                                                     'services_name': 'redis-server.service'})
    assert 'services_name must be a systemd unit name' not in ok.stdout


# ---- host_health_info: a log path that is not a regular file ---------------------------------

def test_host_health_info_reads_only_regular_files_as_logs(tmp_path):
    """A FIFO as log path made the module wait for a writer forever; a device was read as a log."""
    fifo = tmp_path / 'app.log'
    os.mkfifo(str(fifo))
    for path in (str(fifo), '/dev/zero'):
        # a hang would end in run_module's subprocess timeout, not in a result
        res = run_module('host_health_info', {'logs': [{'path': path}]})
        assert res.failed and one_sentence(res['msg']) == \
            "logs[0].path: cannot read '%s': not a regular file" % path, res.result
