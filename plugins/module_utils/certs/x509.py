# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificates and keys: parse, summarize, compare, verify a chain, make keys and CSRs.

Everything here works on PEM text and ``cryptography`` objects; nothing reads or writes files
or talks to a server (that is ``locations.py``). A private key is never part of a summary.
"""

from __future__ import annotations

import datetime
import re
import sys

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

try:
    import cryptography
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_ERROR = exc

try:
    # RFC 5280 path validation with the CA/Browser Forum server profile (cryptography >= 42)
    from cryptography.x509 import verification
    HAS_VERIFICATION = True
except ImportError:
    HAS_VERIFICATION = False

# The oldest cryptography with what this collection uses: x509.verification (PolicyBuilder,
# Store, build_server_verifier) and Certificate.not_valid_{before,after}_utc, all new in 42.0.0.
CRYPTOGRAPHY_NEEDED = '42.0.0'

KEY_TYPES = ('rsa2048', 'rsa3072', 'rsa4096', 'ec256', 'ec384')
SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'

_PEM_CERT = re.compile(r'-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----', re.S)


class CertError(OncallError):
    """One clear sentence about a certificate, a key or where they live."""


def _version_tuple(text):
    return tuple(int(n) for n in re.findall(r'\d+', str(text))[:3])


def cryptography_problem():
    """None when this Python has a cryptography the modules can use, else one sentence naming
    the version found and the one needed (checked at start: an old version is never an
    AttributeError in the middle of a run)."""
    if not HAS_CRYPTOGRAPHY:
        return ('the Python package cryptography is not installed for %s; cryptography %s or newer '
                'is needed (pip install "cryptography>=%s")' % (sys.executable, CRYPTOGRAPHY_NEEDED,
                                                                CRYPTOGRAPHY_NEEDED))
    found = getattr(cryptography, '__version__', 'unknown')
    if not HAS_VERIFICATION or _version_tuple(found) < _version_tuple(CRYPTOGRAPHY_NEEDED):
        return ('cryptography %s is installed for %s but %s or newer is needed (its x509.verification '
                'API): install it with pip install "cryptography>=%s", or point ansible_python_interpreter '
                'at a Python that has it' % (found, sys.executable, CRYPTOGRAPHY_NEEDED, CRYPTOGRAPHY_NEEDED))
    return None


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def split_pem(text):
    """Every certificate block in *text*, in order."""
    if isinstance(text, bytes):
        text = text.decode('ascii', 'replace')
    return [m.group(0) + '\n' for m in _PEM_CERT.finditer(text or '')]


def load_chain(text, what):
    """The certificates in PEM *text* (leaf first); CertError names *what* when there is none."""
    blocks = split_pem(text)
    if not blocks:
        raise CertError('%s is not a PEM certificate (no BEGIN CERTIFICATE block)' % what)
    try:
        return [x509.load_pem_x509_certificate(b.encode('ascii')) for b in blocks]
    except ValueError as exc:
        raise CertError('%s holds a PEM block that is not a valid certificate: %s' % (what, exc))


def load_key(data, what, passphrase=None):
    if isinstance(data, str):
        data = data.encode('ascii', 'replace')
    if b'PRIVATE KEY-----' not in (data or b''):
        raise CertError('%s is not a PEM private key' % what)
    try:
        return serialization.load_pem_private_key(
            data, password=passphrase.encode('utf-8') if passphrase else None)
    except (ValueError, TypeError):
        # the library's message may quote key material; keep ours
        raise CertError('%s cannot be loaded as a private key (wrong format or passphrase)' % what)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode('ascii')


def key_type_of(public_key):
    if isinstance(public_key, rsa.RSAPublicKey):
        return 'rsa%d' % public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {'secp256r1': 'ec256', 'secp384r1': 'ec384', 'secp521r1': 'ec521'}.get(
            public_key.curve.name, 'ec-' + public_key.curve.name)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return 'ed25519'
    return type(public_key).__name__


def new_key(key_type):
    if key_type.startswith('rsa'):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type == 'ec256':
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == 'ec384':
        return ec.generate_private_key(ec.SECP384R1())
    raise CertError('key_type must be one of %s, not %r' % (', '.join(KEY_TYPES), key_type))


def _public_bytes(public_key):
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(cert, key):
    return _public_bytes(cert.public_key()) == _public_bytes(key.public_key())


def sans_of(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = ['DNS:%s' % n for n in ext.get_values_for_type(x509.DNSName)]
    out += ['IP:%s' % n for n in ext.get_values_for_type(x509.IPAddress)]
    return out


def _general_name(name):
    """One subject alternative name as text, prefixed by its type as OpenSSL prints it."""
    if isinstance(name, x509.DNSName):
        return 'DNS:%s' % name.value
    if isinstance(name, x509.IPAddress):
        return 'IP:%s' % name.value
    if isinstance(name, x509.UniformResourceIdentifier):
        return 'URI:%s' % name.value
    if isinstance(name, x509.RFC822Name):
        return 'email:%s' % name.value
    if isinstance(name, x509.RegisteredID):
        return 'RID:%s' % name.value.dotted_string
    if isinstance(name, x509.DirectoryName):
        return 'dirName:%s' % name.value.rfc4514_string()
    if isinstance(name, x509.OtherName):
        return 'otherName:%s;%s' % (name.type_id.dotted_string, name.value.hex())
    return '%s:%s' % (type(name).__name__, getattr(name, 'value', name))


def all_sans_of(cert):
    """Every subject alternative name of *cert*, in the certificate's order: DNS, IP, URI, email,
    RID, dirName and otherName (its type OID and DER value in hex)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [_general_name(n) for n in ext]


def normalize_sans(names):
    """``api.example.com``/``DNS:api.example.com``/``IP:10.0.0.1`` -> sorted ``DNS:``/``IP:`` list."""
    import ipaddress
    out = set()
    for name in names or []:
        name = str(name).strip()
        if name.upper().startswith('DNS:'):
            out.add('DNS:' + name[4:].lower())
        elif name.upper().startswith('IP:'):
            out.add('IP:' + str(ipaddress.ip_address(name[3:])))
        else:
            try:
                out.add('IP:' + str(ipaddress.ip_address(name)))
            except ValueError:
                out.add('DNS:' + name.lower())
    return sorted(out)


def _name(name):
    return name.rfc4514_string()


def not_after(cert):
    return cert.not_valid_after_utc


def summarize(chain, now=None):
    """Plain data about the leaf of *chain*: what cert_info and cert_renew return."""
    now = now or utcnow()
    leaf = chain[0]
    left = not_after(leaf) - now
    return {
        'subject': _name(leaf.subject),
        'issuer': _name(leaf.issuer),
        'serial': '%X' % leaf.serial_number,
        'not_before': leaf.not_valid_before_utc.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'not_after': not_after(leaf).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'days_remaining': round(left.total_seconds() / 86400.0, 2),
        'subject_alt_names': sorted(sans_of(leaf)),
        'all_subject_alt_names': all_sans_of(leaf),
        'key_type': key_type_of(leaf.public_key()),
        'self_signed': leaf.issuer == leaf.subject,
        'chain_length': len(chain),
        'fingerprint_sha256': leaf.fingerprint(hashes.SHA256()).hex(),
    }


def load_trust(ca_path):
    """Trusted roots from a PEM bundle (default: the system bundle); [] when unreadable.

    Each certificate is parsed on its own: one that this cryptography version refuses (the
    system bundle holds a few old roots with non-positive serials) is left out, not the bundle.
    """
    import warnings
    path = ca_path or SYSTEM_CA_BUNDLE
    try:
        with open(path, 'rb') as f:
            blocks = split_pem(f.read())
    except OSError:
        blocks = []
    roots = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for block in blocks:
            try:
                roots.append(x509.load_pem_x509_certificate(block.encode('ascii')))
            except ValueError:
                continue
    if ca_path and not roots:
        raise CertError('ca_path %s cannot be read as a PEM bundle of CA certificates' % ca_path)
    return roots


def _server_verifier(anchors, now, subject):
    """cryptography's server verifier (None when the name is one it refuses, such as '-a.test')."""
    builder = verification.PolicyBuilder().store(verification.Store(anchors)).time(now)
    try:
        return builder.build_server_verifier(subject)
    except ValueError:
        return None


def _der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def _subject_for(name):
    """The cryptography subject for a DNS name or an IP address (``-verify_hostname`` /
    ``-verify_ip``); None when *name* is neither."""
    import ipaddress
    try:
        return x509.IPAddress(ipaddress.ip_address(str(name).strip('[]')))
    except ValueError:
        pass
    text = str(name)
    if not text or not re.match(r'^[A-Za-z0-9_.-]+$', text) or '..' in text:
        return None
    return x509.DNSName(text)


def _own_subject(leaf):
    """A name the leaf itself claims (its first DNS or IP subject alternative name; a wildcard
    stands for one label under it), so that a chain without a host name to check is verified by
    the same server policy; None when it claims no DNS name or IP address."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for dns in san.get_values_for_type(x509.DNSName):
        subject = _subject_for('oncall-check' + dns[1:] if dns.startswith('*.') else dns)
        if isinstance(subject, x509.DNSName):
            return subject
    for ip in san.get_values_for_type(x509.IPAddress):
        return x509.IPAddress(ip)
    return None


def _named(text):
    """'CN=x' from cryptography's '<Certificate(subject=<Name(CN=x)>, ...)>' in a message."""
    m = re.search(r'<Name\((.*?)\)>', text)
    return m.group(1) if m else None


def _dates_problem(certs, now):
    for cert in certs:
        if now < cert.not_valid_before_utc:
            return '%s is not valid before %s' % (_name(cert.subject), cert.not_valid_before_utc)
        if now > cert.not_valid_after_utc:
            return '%s expired on %s' % (_name(cert.subject), cert.not_valid_after_utc)
    return None


def _names_of(leaf):
    return ', '.join(n for n in all_sans_of(leaf) if n.startswith(('DNS:', 'IP:'))) or 'no DNS name or IP address'


def explain(message, chain, anchors, name=None, now=None):
    """One sentence for a cryptography VerificationError *message* about *chain*."""
    now = now or utcnow()
    leaf = chain[0]
    who = _named(message)
    raw = re.sub(r'^validation failed: ', '', message)
    raw = re.sub(r'\s*\(encountered processing <Certificate\(.*?\)>\)', '', raw)
    raw = re.sub(r'^candidates exhausted: ', '', raw)
    anchor_ders = set(_der(a) for a in anchors)
    if leaf.issuer == leaf.subject and _der(leaf) not in anchor_ders and name is None:
        return 'self-signed certificate %s is not a trusted root' % _name(leaf.subject)
    if 'no matching subjectAltName' in message:
        return 'hostname mismatch: the certificate is for %s, not %s' % (_names_of(leaf), name)
    if 'has no subjectAltName' in message:
        return ('%s has no DNS or IP subjectAltName, which TLS clients require of a server '
                'certificate' % _name(leaf.subject))
    if 'not valid at validation time' in message:
        return _dates_problem(chain + list(anchors), now) or raw
    if 'Forbidden signature algorithm' in message:
        m = re.search(r'oid: (\d+(?:\.\d+)+)', message)
        for cert in chain:
            if m and cert.signature_algorithm_oid.dotted_string == m.group(1):
                algorithm = cert.signature_algorithm_oid._name  # pylint: disable=protected-access
                weak = ' (SHA-1)' if 'sha1' in algorithm.lower().replace('-', '') else ''
                return ('%s is signed with %s%s, a signature algorithm TLS clients reject'
                        % (_name(cert.subject), algorithm, weak))
        return 'a certificate of the chain is signed with an algorithm TLS clients reject (%s)' % raw
    if 'basicConstraints.cA must be asserted' in message:
        return 'an issuer in the chain is not a CA (basicConstraints CA:FALSE or missing), so it cannot sign certificates'
    if 'basicConstraints.cA must not be asserted' in message:
        return '%s is a CA certificate (CA:TRUE), not a server certificate' % (who or _name(leaf.subject))
    if 'path length constraint' in message:
        return 'a CA\'s pathlen constraint is exceeded: more CA certificates below it than it allows'
    if 'keyCertSign' in message:
        return 'an issuing CA lacks the keyCertSign key usage, so it may not sign certificates'
    if 'required EKU not found' in message:
        return ('%s is not for TLS servers: its extendedKeyUsage lacks serverAuth'
                % (who or _name(leaf.subject)))
    if 'no interior errors' in message or 'exceeds max depth' in message:
        last = chain[-1]
        if last.issuer == last.subject and _der(last) not in anchor_ders:
            return 'self-signed certificate %s is not a trusted root' % _name(last.subject)
        if 'no interior errors' in message:
            return 'no trusted root issued %s (issuer %s)' % (_name(last.subject), _name(last.issuer))
    return '%s%s' % ('%s: ' % who if who else '', raw)


def _verify_pinned(leaf, now, name):
    """A self-signed leaf that is itself a trust anchor (``openssl verify -CAfile self.pem
    self.pem``): cryptography's server policy builds no path for it (an end-entity certificate
    is never its own issuer), so its dates and extendedKeyUsage are checked here and its name
    by cryptography's name check."""
    problem = _dates_problem([leaf], now)
    if problem:
        return False, problem
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.SERVER_AUTH not in eku and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
            return False, '%s is not for TLS servers: its extendedKeyUsage lacks serverAuth' % _name(leaf.subject)
    except x509.ExtensionNotFound:
        pass
    if name is not None:
        return check_name([leaf], name, now)
    return True, ''


def verify_chain(chain, roots, now=None, name=None):
    """(ok, why): *chain* (leaf first, then what was presented with it) verified as a TLS server
    certificate by cryptography's x509.verification (RFC 5280 path validation with the CA/B
    Forum server profile), the same decision as ``openssl verify -purpose sslserver`` at the
    security level of TLS clients; *why* is one sentence.

    *roots* are the trust anchors. *name* is the DNS name or IP address a client asked for
    (``s_client -verify_hostname`` / ``-verify_ip``); without it, the leaf is checked for a name
    it claims itself, so only its path, usages and dates decide.
    """
    now = now or utcnow()
    leaf = chain[0]
    anchors = list(roots)
    if not anchors:
        return False, 'there is no trust anchor to verify against: set ca_path (or trust_chain_root)'
    if leaf.issuer == leaf.subject and _der(leaf) in set(_der(a) for a in anchors):
        return _verify_pinned(leaf, now, name)
    if name is not None:
        subject = _subject_for(name)
        if subject is None:
            return False, '%r is neither a DNS name nor an IP address' % name
    else:
        subject = _own_subject(leaf)
        if subject is None:
            return False, ('%s has no DNS or IP subjectAltName, which TLS clients require of a server '
                           'certificate' % _name(leaf.subject))
    verifier = _server_verifier(anchors, now, subject)
    if verifier is None:
        return False, '%r is neither a DNS name nor an IP address' % (name or subject.value)
    try:
        verifier.verify(leaf, list(chain[1:]))
    except verification.VerificationError as exc:
        return False, explain(str(exc), list(chain), anchors, name, now)
    return True, ''


def check_name(chain, name, now=None):
    """(matches, why): whether the leaf of *chain* is for *name* (a DNS or IP subjectAltName,
    wildcards as TLS clients match them), as ``openssl s_client -verify_hostname`` /
    ``-verify_ip`` decides, whatever its chain.

    cryptography's server verifier checks the name before it builds a path; run against a store
    holding the leaf alone, only a name problem is read from its answer.
    """
    now = now or utcnow()
    leaf = chain[0]
    subject = _subject_for(name)
    if subject is None:
        return False, '%r is neither a DNS name nor an IP address' % name
    verifier = _server_verifier([leaf], now, subject)
    if verifier is None:
        return False, '%r is neither a DNS name nor an IP address' % name
    try:
        verifier.verify(leaf, [])
    except verification.VerificationError as exc:
        if 'subjectAltName' in str(exc):
            return False, explain(str(exc), [leaf], [leaf], name, now)
    return True, ''


def build_csr(key, sans, common_name=None):
    names = []
    for san in sans:
        kind, value = san.split(':', 1)
        if kind == 'IP':
            import ipaddress
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
        else:
            names.append(x509.DNSName(value))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject).add_extension(
        x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256())


def sign(key, sans, common_name, valid_days, issuer_cert=None, issuer_key=None):
    """A leaf certificate for *key*: self-signed, or signed by issuer_cert/issuer_key (own CA)."""
    now = utcnow()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or sans[0].split(':', 1)[1])])
    csr = build_csr(key, sans, common_name)
    san_ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=valid_days))
               .add_extension(san_ext, critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    signer = issuer_key if issuer_key is not None else key
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False)
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)


def make_ca(common_name, valid_days=3650, key=None):
    """A CA certificate and its key (for tests, the lab and the ownca provider's examples)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key
