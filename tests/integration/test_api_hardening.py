#!/usr/bin/env python3
"""The monitor's API against idle clients, without the token, and over HTTPS, with real processes.

- 2,000 idle connections from 127.0.0.2 to 127.0.0.9 take at most 16 slots
  per address; `vigil status` from 127.0.0.1 still answers within 5 s, the
  refusals are counted in /v1/health, and the server closes the idle ones
  after its timeout.
- A call that changes state: 403 when the monitor has no token (naming
  api_token_file), 401 with the Bearer challenge without the right one,
  through with it (`vigil keys reload`); a token file others can read is
  refused.
- HTTPS with a self-signed certificate: the CLI with --cacert (or -c, which
  names the certificate) works; plain HTTP and an unknown CA do not.
"""
import json
import os
import resource
import select
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

from vigil_harness import VIGIL, Monitor, check, run_tests

CONFIG = """
monitor = {
  listen = [ "127.0.0.1:@PORT@" ];
  api = "127.0.0.1:@API@";
  insecure = true;
  @EXTRA@
};
"""

IDLE_CLIENTS = 2000
IDLE_SOURCES = ["127.0.0.%d" % i for i in range(2, 10)]
PER_ADDRESS = 16
STATUS_BOUND_S = 5.0
TOKEN = "it-token-5f2c0c6a9e1d4b7f8a3c"


def config(extra=""):
    return CONFIG.replace("@EXTRA@", extra)


def write_secret(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def request(port, method, path, token=None, scheme="http", context=None):
    """(status, headers, JSON body) of one call; errors answered are returned, not raised."""
    req = urllib.request.Request("%s://127.0.0.1:%d%s" % (scheme, port, path), method=method,
                                 data=b"" if method == "POST" else None)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as r:
            return r.status, r.headers, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read().decode())


def cli(*args, timeout=15):
    return subprocess.run([VIGIL] + list(args), capture_output=True, timeout=timeout)


def test_idle_connections(tmp):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE_CLIENTS + 256
    check(hard == resource.RLIM_INFINITY or hard >= want,
          "this test needs %d descriptors; the hard limit is %d" % (want, hard))
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    m = Monitor(tmp, config())
    socks = []
    failed = 0
    try:
        t0 = time.monotonic()
        for i in range(IDLE_CLIENTS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(2)
            s.bind((IDLE_SOURCES[i % len(IDLE_SOURCES)], 0))
            try:
                s.connect(("127.0.0.1", m.api_port))
                socks.append(s)
            except OSError:
                failed += 1
                s.close()
        opened = time.monotonic() - t0
        check(len(socks) >= IDLE_CLIENTS * 9 // 10,
              "only %d of %d idle connections opened (%d failed)" % (len(socks), IDLE_CLIENTS,
                                                                      failed))
        # A client from another address is served at once.
        t0 = time.monotonic()
        r = cli("status", "--api", "127.0.0.1:%d" % m.api_port, timeout=30)
        took = time.monotonic() - t0
        check(r.returncode == 0 and b"0 nodes" in r.stdout,
              "vigil status with %d idle clients: %d %r %r" % (len(socks), r.returncode, r.stdout,
                                                               r.stderr))
        check(took < STATUS_BOUND_S, "vigil status took %.2fs with idle clients" % took)
        print("  %d idle connections opened in %.2fs; vigil status answered in %.3fs" % (
            len(socks), opened, took), flush=True)
        # Every address holds its 16; the rest were refused and counted.
        most = PER_ADDRESS * len(IDLE_SOURCES)
        deadline = time.monotonic() + 10
        while True:
            api = m.get("/v1/health")["api"]
            if api["refused_per_address"] >= len(socks) - most or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(api["refused_per_address"] >= len(socks) - most and api["connections"] <= most + 1,
              "api counters %r" % api)
        check(api["per_address_limit"] == PER_ADDRESS, "api counters %r" % api)
        # The server closes idle connections after its timeout (5 s): every one reads its end.
        t0 = time.monotonic()
        open_ = {s.fileno(): s for s in socks}
        poller = select.poll()
        for fd in open_:
            poller.register(fd, select.POLLIN)
        while open_ and time.monotonic() - t0 < 15:
            for fd, _ in poller.poll(500):
                try:
                    data = open_[fd].recv(1)
                except OSError:
                    data = b""
                if not data:
                    poller.unregister(fd)
                    del open_[fd]
        check(not open_, "%d idle connections still open after 15 s" % len(open_))
        print("  the server closed the idle connections within %.1fs" % (time.monotonic() - t0),
              flush=True)
        api = m.get("/v1/health")["api"]
        check(api["connections"] <= 1, "connections still counted: %r" % api)
    finally:
        for s in socks:
            s.close()


def test_token(tmp):
    # Without a token configured: every change is refused with 403, naming the setting.
    m = Monitor(tmp, config())
    st, _, body = request(m.api_port, "POST", "/v1/keys/reload", token=TOKEN)
    check(st == 403 and "api_token_file" in body["error"], "no token configured: %d %r" % (st, body))
    tf = write_secret(os.path.join(tmp, "cli.token"), TOKEN + "\n")
    r = cli("keys", "reload", "--api", "127.0.0.1:%d" % m.api_port, "--token-file", tf)
    check(r.returncode == 1 and b"api_token_file" in r.stderr, "vigil keys: %r" % (r.stderr,))
    m.proc.terminate()
    m.proc.wait(10)

    # A token file others can read: the monitor refuses to start.
    token_file = write_secret(os.path.join(tmp, "api.token"), TOKEN + "\n", 0o640)
    extra = 'api_token_file = "@TMP@/api.token";'
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write(config(extra).replace("@PORT@", "0").replace("@API@", "0").replace("@TMP@", tmp))
    r = subprocess.run([VIGIL, "monitor", "-c", bad], capture_output=True, timeout=10)
    check(r.returncode != 0 and b"permissions 0640 for '%s' are too open" % token_file.encode()
          in r.stderr and b"token" in r.stderr, "open token file: %r" % r.stderr)
    os.chmod(token_file, 0o600)

    # With a key, so that the reload has something to do.
    subprocess.run([VIGIL, "keygen", "-o", os.path.join(tmp, "master.key")], check=True)
    extra += ' key_file = "@TMP@/master.key";'
    m = Monitor(tmp, config(extra))
    check(m.get("/v1/health")["api"]["token"] is True, "health does not show the token")
    # Reading needs nothing.
    st, _, _ = request(m.api_port, "GET", "/v1/nodes")
    check(st == 200, "GET without a token: %d" % st)
    # Missing or wrong: 401 with the challenge.
    for tok in (None, TOKEN[:-1] + "x", TOKEN + "x", ""):
        st, hdrs, body = request(m.api_port, "POST", "/v1/keys/reload", token=tok)
        check(st == 401 and hdrs.get("WWW-Authenticate", "").startswith("Bearer"),
              "token %r: %d %r %r" % (tok, st, dict(hdrs), body))
    check(m.get("/v1/health")["api"]["auth_failures"] == 4, "auth_failures not counted")
    # The right one goes through: the keys are read again.
    st, _, body = request(m.api_port, "POST", "/v1/keys/reload", token=TOKEN)
    check(st == 200, "right token: %d %r" % (st, body))
    r = cli("keys", "reload", "-c", m.conf)
    check(r.returncode == 0 and b"reloaded" in r.stdout, "vigil keys -c: %r" % (r,))
    check(m.read_log().count("keys reloaded: 1 held, key ids 0") == 2, "reloads not logged")
    # The CLI with a wrong token file: told so.
    wrong = write_secret(os.path.join(tmp, "wrong.token"), TOKEN[:-1] + "x")
    r = cli("keys", "reload", "-c", m.conf, "--token-file", wrong)
    check(r.returncode == 1 and b"wrong token" in r.stderr, "vigil keys, wrong token: %r" % (r,))
    # Unknown paths, without the token, do not even say that they do not exist.
    st, _, _ = request(m.api_port, "DELETE", "/v1/nodes/web1")
    check(st == 401, "DELETE without a token: %d" % st)


def make_cert(tmp):
    cert, key = os.path.join(tmp, "api.crt"), os.path.join(tmp, "api.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o600)
    return cert, key


class TlsMonitor(Monitor):
    """A monitor whose API speaks HTTPS only; the harness reads it with the certificate."""

    def __init__(self, tmp, config_text, cafile):
        self.ctx = ssl.create_default_context(cafile=cafile)
        super().__init__(tmp, config_text)

    def get(self, path):
        url = "https://127.0.0.1:%d%s" % (self.api_port, path)
        with urllib.request.urlopen(url, timeout=5, context=self.ctx) as r:
            return json.loads(r.read().decode())


def test_tls(tmp):
    cert, key = make_cert(tmp)
    write_secret(os.path.join(tmp, "api.token"), TOKEN)
    subprocess.run([VIGIL, "keygen", "-o", os.path.join(tmp, "master.key")], check=True)
    extra = ('api_tls_cert = "@TMP@/api.crt"; api_tls_key = "@TMP@/api.key"; '
             'api_token_file = "@TMP@/api.token"; key_file = "@TMP@/master.key";')
    # The key file must be the owner's only.
    os.chmod(key, 0o644)
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write(config(extra).replace("@PORT@", "0").replace("@API@", "0").replace("@TMP@", tmp))
    r = subprocess.run([VIGIL, "monitor", "-c", bad], capture_output=True, timeout=10)
    check(r.returncode != 0 and b"api_tls_key" in r.stderr and b"too open" in r.stderr,
          "open TLS key: %r" % r.stderr)
    os.chmod(key, 0o600)
    # One half alone is refused.
    with open(bad, "w") as f:
        f.write(config('api_tls_cert = "%s";' % cert).replace("@PORT@", "0")
                .replace("@API@", "0"))
    r = subprocess.run([VIGIL, "monitor", "-c", bad], capture_output=True, timeout=10)
    check(r.returncode != 0 and b"api_tls_key" in r.stderr, "cert alone: %r" % r.stderr)

    m = TlsMonitor(tmp, config(extra), cert)
    check(m.get("/v1/health")["api"]["tls"] is True, "health does not show TLS")
    url = "https://127.0.0.1:%d" % m.api_port
    r = cli("status", "--api", url, "--cacert", cert)
    check(r.returncode == 0 and b"0 nodes" in r.stdout, "status over https: %r" % (r,))
    r = cli("status", "-c", m.conf)
    check(r.returncode == 0 and b"0 nodes" in r.stdout, "status -c over https: %r" % (r,))
    r = cli("events", "--api", url, "--cacert", cert)
    check(r.returncode == 0, "events over https: %r" % (r,))
    # Plain HTTP is not served; an unknown CA is not trusted.
    r = cli("status", "--api", "127.0.0.1:%d" % m.api_port)
    check(r.returncode != 0 and b"cannot reach" in r.stderr, "plain http: %r" % (r,))
    r = cli("status", "--api", url)
    check(r.returncode != 0 and b"cannot reach" in r.stderr, "unknown CA: %r" % (r,))
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/v1/health" % m.api_port, timeout=5).read()
        check(False, "plain HTTP answered")
    except (urllib.error.URLError, ConnectionError, OSError):
        pass
    # The token over HTTPS.
    st, _, body = request(m.api_port, "POST", "/v1/keys/reload", scheme="https", context=m.ctx)
    check(st == 401, "no token over https: %d %r" % (st, body))
    st, _, body = request(m.api_port, "POST", "/v1/keys/reload", token=TOKEN, scheme="https",
                          context=m.ctx)
    check(st == 200, "token over https: %d %r" % (st, body))
    r = cli("keys", "reload", "-c", m.conf)
    check(r.returncode == 0, "vigil keys over https: %r" % (r,))


if __name__ == "__main__":
    run_tests([test_idle_connections, test_token, test_tls])
