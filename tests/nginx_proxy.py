"""A real nginx in front of a daemon, for the tests of what deployments put there.

:func:`nginx` runs ``nginx`` in the foreground with one ``server`` block
(the caller's: a plain proxy with ``X-Accel-Redirect``, a TLS terminator),
everything else of it kept under one work directory, and stops it after.
:func:`certificates` makes what a TLS block needs, for 127.0.0.1, with
``cryptography`` (no ``openssl`` binary needed).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from servers import free_port, wait_listening

_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/tmp;
    proxy_temp_path {work}/tmp;
    fastcgi_temp_path {work}/tmp;
    uwsgi_temp_path {work}/tmp;
    scgi_temp_path {work}/tmp;
    upstream ministry {{
        server 127.0.0.1:{upstream};
        keepalive 8;
    }}
    server {{
{server}
    }}
}}
"""


@contextlib.contextmanager
def nginx(work: Path, upstream: int, server: str) -> Iterator[int]:
    """nginx proxying to ``upstream`` (a port, as ``upstream ministry``); yields its port.

    ``server`` is the inside of the ``server`` block, formatted with
    ``port`` (where nginx listens); it names ``ministry`` in ``proxy_pass``.
    """
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(binary), "nginx is needed (apt-get install nginx)"
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(
        _CONF.format(
            user="user root;" if os.geteuid() == 0 else "",
            work=work,
            upstream=upstream,
            server=server.format(port=port),
        )
    )
    process = subprocess.Popen([binary, "-p", str(work), "-c", str(conf), "-e", "stderr"])
    try:
        wait_listening(port, process, "nginx")
        yield port
    finally:
        process.terminate()
        process.wait(10)


def certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate it signed for 127.0.0.1: (CA, certificate, key).

    Clients trust the CA through ``SSL_CERT_FILE`` (uv), ``--cert`` (pip,
    twine); rustls, under uv, refuses a self-signed CA as the server's own
    certificate, hence two.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def named(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def signed(builder: x509.CertificateBuilder) -> x509.Certificate:
        builder = builder.issuer_name(named("ministry test CA")).serial_number(
            x509.random_serial_number()
        )
        builder = builder.not_valid_before(now - datetime.timedelta(minutes=5))
        return builder.not_valid_after(now + datetime.timedelta(days=1)).sign(
            ca_key, hashes.SHA256()
        )

    ca = signed(
        x509.CertificateBuilder()
        .subject_name(named("ministry test CA"))
        .public_key(ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    )
    server = signed(
        x509.CertificateBuilder()
        .subject_name(named("127.0.0.1"))
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
