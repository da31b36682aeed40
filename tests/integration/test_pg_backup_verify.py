# -*- coding: utf-8 -*-
"""pg_backup against a real PostgreSQL 15 and the real pg_restore and sha256sum.

Issue 15 (Backups): a backup is trusted only while it verifies. A truncated and a bit-flipped
newest dump are judged by the reference implementations (``pg_restore`` restoring every entry,
``sha256sum --check`` of the .sha256 file pg_backup writes in its format) beside the module.
Issue 13 (items 3 and 4): no option value reaches pg_dump as an option or a connection
parameter, and no link is followed as dest or as a file in it; only what the module created
gets its mode."""

from __future__ import annotations

import datetime
import os
import socket
import stat
import subprocess
import threading
import time

import pytest

from helpers import PG_BIN, run_module


def conn_args(server, db, **extra):
    args = dict(login_host='127.0.0.1', login_port=server.port, login_user='postgres', login_db=db)
    args.update(extra)
    return args


def make_orders(conn, rows=3000):
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE orders (id int PRIMARY KEY, v text)')
        cur.execute("INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, %d) g" % rows)


def reference_verdict(path):
    """What the reference implementations say of a dump: sha256sum --check of its .sha256 file,
    and pg_restore restoring every entry (to /dev/null)."""
    sums = subprocess.run(['sha256sum', '--check', '--quiet', os.path.basename(path) + '.sha256'],
                          cwd=os.path.dirname(path), capture_output=True, check=False)
    restore = subprocess.run([PG_BIN + '/pg_restore', '--file=/dev/null', path], capture_output=True, check=False)
    return 'ok' if sums.returncode == 0 and restore.returncode == 0 else 'critical'


def listing(directory):
    """Every entry with its type, size, mode and mtime (a before/after of the directory)."""
    out = {}
    for name in sorted(os.listdir(directory)):
        st = os.lstat(os.path.join(directory, name))
        out[name] = (stat.S_IFMT(st.st_mode), st.st_size, stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    return out


def truncate(path):
    size = os.path.getsize(path)
    with open(path, 'r+b') as handle:
        handle.truncate(size // 2)


def flip_bit(path):
    with open(path, 'r+b') as handle:
        handle.seek(os.path.getsize(path) * 2 // 3)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x10]))


@pytest.mark.parametrize('damage', [truncate, flip_bit], ids=['truncated', 'bit-flipped'])
def test_a_damaged_newest_dump_is_critical_set_aside_and_replaced(pgdb, tmp_path, damage):
    server, db, conn = pgdb
    make_orders(conn)
    dest = str(tmp_path / 'backups')
    args = conn_args(server, db, dest=dest, keep=3, max_age='1h')

    first = run_module('pg_backup', args)
    assert not first.failed, first.result
    dump = first['backup']['path']
    assert reference_verdict(dump) == 'ok'
    again = run_module('pg_backup', args)
    assert again['changed'] is False
    assert [f['verdict'] for f in again['findings']] == [reference_verdict(dump)] == ['ok']

    damage(dump)
    assert reference_verdict(dump) == 'critical'
    damaged_bytes = open(dump, 'rb').read()

    # check mode: the same verdict and plan, nothing touched
    before = listing(dest)
    check = run_module('pg_backup', args, check=True)
    assert not check.failed, check.result
    assert check['changed'] is True
    assert [f['verdict'] for f in check['findings']] == ['critical']
    assert check['findings'][0]['object'] == 'backup %s' % dump
    assert [a['action'] for a in check['plan']] == ['set aside', 'backup']
    assert listing(dest) == before

    time.sleep(1.1)  # file names carry the second
    fix = run_module('pg_backup', args)
    assert not fix.failed, fix.result
    assert fix['changed'] is True
    assert [f['verdict'] for f in fix['findings']] == ['critical']
    reason = fix['findings'][0]['figure']
    assert reason.startswith('damaged: ') and '\n' not in reason
    # kept aside, byte for byte, with its checksum and manifest; never counted again
    aside = fix['set_aside'][0]
    assert aside.startswith(dump + '.damaged-') and not os.path.exists(dump)
    assert open(aside, 'rb').read() == damaged_bytes
    assert os.path.exists(aside + '.sha256') and os.path.exists(aside + '.json')
    stamp = aside.rsplit('.damaged-', 1)[1]
    assert abs((datetime.datetime.strptime(stamp, '%Y%m%dT%H%M%SZ').replace(tzinfo=datetime.timezone.utc)
                - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) < 120
    fresh = fix['backup']['path']
    assert fresh != dump and reference_verdict(fresh) == 'ok'
    assert fix['newest']['path'] == fresh

    second = run_module('pg_backup', args)
    assert not second.failed and second['changed'] is False, second.result
    assert [f['verdict'] for f in second['findings']] == [reference_verdict(fresh)] == ['ok']
    assert os.path.exists(aside)

    # the fresh dump restores the rows
    restored = '%s_r' % db[:40]
    with conn.cursor() as cur:
        cur.execute('DROP DATABASE IF EXISTS %s' % restored)
        cur.execute('CREATE DATABASE %s' % restored)
    subprocess.run([PG_BIN + '/pg_restore', '-h', '127.0.0.1', '-p', str(server.port), '-U', 'postgres',
                    '-d', restored, fresh], check=True)
    rconn = server.connect(db=restored)
    with rconn.cursor() as cur:
        cur.execute('SELECT count(*) FROM orders')
        assert cur.fetchone()[0] == 3000
    rconn.close()
    with conn.cursor() as cur:
        cur.execute('DROP DATABASE %s' % restored)


def test_a_missing_checksum_file_is_damage_too(pgdb, tmp_path):
    server, db, conn = pgdb
    make_orders(conn, rows=10)
    args = conn_args(server, db, dest=str(tmp_path / 'b'), max_age='1h')
    dump = run_module('pg_backup', args)['backup']['path']
    os.unlink(dump + '.sha256')
    time.sleep(1.1)
    res = run_module('pg_backup', args)
    assert res['changed'] is True and [f['verdict'] for f in res['findings']] == ['critical']
    assert 'sha256' in res['findings'][0]['figure']


class Listener(object):
    """A TCP port that records whoever connects (where a redirected pg_dump would go)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                return
            conn.settimeout(2)
            try:
                self.connections.append(conn.recv(4096))
            except OSError:
                self.connections.append(b'')
            conn.close()


@pytest.mark.parametrize('check_mode', [False, True], ids=['apply', 'check'])
def test_db_cannot_become_a_pg_dump_option_or_a_connection(pgdb, tmp_path, check_mode):
    server, db, conn = pgdb
    make_orders(conn, rows=10)
    evil = Listener()
    work = tmp_path / 'work'
    work.mkdir()
    dest = tmp_path / 'backups'
    cases = [
        # a bare argument starting with -- was an option: the dump went to the module's cwd
        ('--file=evil.dump', 'database "--file=evil.dump" does not exist'),
        ('-fevil.dump', 'database "-fevil.dump" does not exist'),
        # a bare argument with = was a connection string: pg_dump connected (with the password) there
        ('dbname=%s host=127.0.0.1 port=%d' % (db, evil.port), 'does not exist'),
        ("x' host='127.0.0.1' port='%d" % evil.port, 'does not exist'),
        ('postgresql://127.0.0.1:%d/%s' % (evil.port, db), 'cannot name a backup file'),
        ('--file=/tmp/x/evil.dump', 'cannot name a backup file'),
    ]
    for value, needle in cases:
        res = run_module('pg_backup', conn_args(server, value, dest=str(dest), max_age='0', login_password='S3cret!x'),
                         check=check_mode)
        if check_mode and 'cannot name' not in needle:
            # check mode plans without connecting: nothing is run
            assert not res.failed and [a['action'] for a in res['plan']] == ['backup'], res.result
        else:
            assert res.failed, (value, res.result)
            assert needle in res['msg'] and '\n' not in res['msg'], (value, res['msg'])
    assert evil.connections == []
    assert not os.path.exists('evil.dump') and not os.path.exists('/tmp/x/evil.dump')
    assert not (work / 'evil.dump').exists()
    assert not dest.exists() or [n for n in os.listdir(str(dest)) if not n.startswith('.')] == []
    evil.sock.close()


def test_connection_values_are_quoted_as_libpq_reads_them():
    """The conninfo pg_backup hands to pg_dump, parsed back by libpq itself (PQconninfoParse)."""
    import psycopg2.extensions
    from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import backup as pgb
    params = dict(login_db="we'ird db\\ host=evil", login_host="h'ost port=1", login_port=5433, login_user='u -f x',
                  login_password="pa ss'word", ssl_mode='require', connect_timeout=5, ca_cert='/a b/ca.pem',
                  connect_params={'sslcert': "/c'ert", 'options': '-c search_path=x', 'password': 'override'})
    arg, env = pgb.connection(params)
    assert arg.startswith('--dbname=')
    parsed = psycopg2.extensions.parse_dsn(arg[len('--dbname='):])
    assert parsed == {'dbname': "we'ird db\\ host=evil", 'host': "h'ost port=1", 'port': '5433',
                      'user': 'u -f x', 'sslmode': 'require', 'connect_timeout': '5',
                      'sslrootcert': '/a b/ca.pem', 'application_name': 'oncall.runbooks backup',
                      'sslcert': "/c'ert", 'options': '-c search_path=x'}
    assert 'password' not in arg and 'pa ss' not in arg and 'override' not in arg
    assert env['PGPASSWORD'] == 'override'
    with pytest.raises(pgb.BackupError) as err:
        pgb.connection(dict(params, connect_params={'sslpassword': 'x'}))
    assert 'connect_params.sslpassword' in str(err.value)
    with pytest.raises(pgb.BackupError) as err:
        pgb.connection(dict(params, connect_params={'host=evil port': 'x'}))
    assert 'not a libpq parameter name' in str(err.value)


def test_only_what_the_module_created_gets_its_mode(pgdb, tmp_path):
    server, db, conn = pgdb
    make_orders(conn, rows=10)
    shared = tmp_path / 'shared'
    shared.mkdir()
    os.chmod(str(shared), 0o1777)  # like /tmp
    res = run_module('pg_backup', conn_args(server, db, dest=str(shared)))
    assert not res.failed, res.result
    assert stat.S_IMODE(os.stat(str(shared)).st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(res['backup']['path']).st_mode) == 0o600
    made = tmp_path / 'made' / 'here'
    res = run_module('pg_backup', conn_args(server, db, dest=str(made)))
    assert not res.failed, res.result
    assert stat.S_IMODE(os.stat(str(made)).st_mode) == 0o700


@pytest.mark.parametrize('check_mode', [False, True], ids=['apply', 'check'])
def test_dest_that_is_a_link_is_refused(pgdb, tmp_path, check_mode):
    server, db, conn = pgdb
    target = tmp_path / 'elsewhere'
    target.mkdir()
    (target / 'precious').write_text('x')
    link = tmp_path / 'backups'
    os.symlink(str(target), str(link))
    before = listing(str(target)), stat.S_IMODE(os.stat(str(target)).st_mode)
    res = run_module('pg_backup', conn_args(server, db, dest=str(link)), check=check_mode)
    assert res.failed and res['msg'] == 'dest %s is a symbolic link: give the directory itself' % link
    assert (listing(str(target)), stat.S_IMODE(os.stat(str(target)).st_mode)) == before


def test_links_at_the_file_names_are_never_followed(pgdb, tmp_path):
    server, db, conn = pgdb
    make_orders(conn, rows=10)
    dest = tmp_path / 'backups'
    dest.mkdir()
    victim = tmp_path / 'victim'
    victim.write_text('precious')

    def stamps(seconds=4):
        now = datetime.datetime.now(datetime.timezone.utc)
        return [(now + datetime.timedelta(seconds=i)).strftime('%Y%m%dT%H%M%SZ') for i in range(seconds + 1)]

    # a link at the temporary name pg_dump's output would be opened at: refused (O_EXCL | O_NOFOLLOW)
    for s in stamps(8):
        os.symlink(str(victim), str(dest / ('.%s-%s.dump.partial' % (db, s))))
    res = run_module('pg_backup', conn_args(server, db, dest=str(dest)))
    assert res.failed and res['msg'].startswith('cannot write the backup in %s: ' % dest), res.result
    assert '\n' not in res['msg']
    assert victim.read_text() == 'precious'
    for name in os.listdir(str(dest)):
        os.unlink(str(dest / name))

    # links at the final names: replaced by the new file, their target untouched
    for s in stamps(8):
        for suffix in ('.dump', '.dump.sha256', '.dump.json'):
            os.symlink(str(victim), str(dest / ('%s-%s%s' % (db, s, suffix))))
    res = run_module('pg_backup', conn_args(server, db, dest=str(dest)))
    assert not res.failed, res.result
    assert victim.read_text() == 'precious'
    path = res['backup']['path']
    for suffix in ('', '.sha256', '.json'):
        assert stat.S_ISREG(os.lstat(path + suffix).st_mode)
    assert reference_verdict(path) == 'ok'
