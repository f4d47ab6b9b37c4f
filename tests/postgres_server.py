"""A private PostgreSQL cluster on 127.0.0.1 for the tests and benchmarks: Debian's `postgresql`
package (scripts/setup.sh installs it), `initdb` into a temporary folder, `pg_ctl start` on a
free port, `pg_ctl stop` and the folder removed afterwards — also when the tests fail.

As root (CI) the cluster runs as the `postgres` OS user, since PostgreSQL refuses to run as
root. Clients authenticate with a password (scram-sha-256), so a wrong password is refused as
on a real server. `PostgresServer(tls=(cert, key))` serves TLS with that certificate and
accepts TCP clients only over TLS (`hostssl`).

  with PostgresServer() as pg:          pg.url, pg.port, pg.new_database() -> name, pg.psql(sql),
                                        pg.pause() / pg.resume() (the server goes down, comes back)
  python3 tests/postgres_server.py run -- CMD...
      starts a cluster, runs CMD with OGX_TEST_POSTGRES_URL and OGX_BENCH_POSTGRES_URL set to
      it, stops the cluster, exits with CMD's status.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from ogx_harness import free_port

USER = "ogx"
# A throwaway cluster's password: the tests check it never appears in ogx's output.
PASSWORD = "pg-test-secret-4f1c"
DATABASE = "ogx"


def binaries_dir() -> Path | None:
    """The newest installed server's bin folder (initdb, pg_ctl, postgres, psql)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresUnavailable(RuntimeError):
    pass


class PostgresServer:
    def __init__(self, tls: tuple[Path, Path] | None = None):
        self.tls = tls
        self.bindir = binaries_dir()
        if self.bindir is None:
            raise PostgresUnavailable(
                "PostgreSQL is not installed: run scripts/setup.sh apt (Debian's postgresql package)")
        self.port = int(free_port())
        self.root: Path | None = None
        self.as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgres://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        command = list(args)
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--"] + command
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}")
        return result

    def __enter__(self) -> "PostgresServer":
        self.root = Path(tempfile.mkdtemp(prefix="ogx-pg-"))
        try:
            os.chmod(self.root, 0o755)
            pwfile = self.root / "pwfile"
            pwfile.write_text(PASSWORD + "\n")
            if self.as_postgres:
                shutil.chown(self.root, "postgres", "postgres")
                shutil.chown(pwfile, "postgres", "postgres")
            data = self.root / "data"
            self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", USER,
                      f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=trust",
                      "-E", "UTF8", "--locale=C.UTF-8")
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                       "-c max_connections=200 -c fsync=off")
            if self.tls:
                options += self._serve_tls_only(data)
            self.options = options
            self.resume()
            self.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        except BaseException:
            self.stop()
            raise
        return self

    def pause(self) -> None:
        """Stops the server, keeping its data (as a database that goes down)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                  "-w", "stop")

    def resume(self) -> None:
        """Starts the server (again) on the same port with the same data."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-o", self.options,
                  "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def _serve_tls_only(self, data: Path) -> str:
        """Copies the certificate and key where the server may read them, allows TCP clients
        over TLS only, and answers the server options that turn TLS on."""
        cert, key = self.root / "server.pem", self.root / "server.key"
        shutil.copyfile(self.tls[0], cert)
        shutil.copyfile(self.tls[1], key)
        os.chmod(key, 0o600)
        hba = data / "pg_hba.conf"
        if self.as_postgres:
            for path in (cert, key):
                shutil.chown(path, "postgres", "postgres")
        lines = hba.read_text().splitlines()
        hba.write_text("\n".join("hostssl" + line[len("host"):] if line.startswith("host ") else line
                                 for line in lines) + "\n")
        return f" -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.root is None:
            return
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                          "-w", "stop")
            except Exception as error:  # noqa: BLE001 (still remove the folder)
                print(f"postgres_server: stopping the cluster failed: {error}", file=sys.stderr)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def psql(self, sql: str, database: str = DATABASE) -> str:
        """Runs `sql` as the cluster's superuser over TCP; answers psql's unaligned output."""
        env = dict(os.environ, PGPASSWORD=PASSWORD)
        result = subprocess.run(
            [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            capture_output=True, text=True, env=env, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr}")
        return result.stdout

    def new_database(self) -> str:
        """A fresh, empty database (one per test, so that tests never see each other's rows)."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name}", database="postgres")
        return name


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "run" or "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    with PostgresServer() as pg:
        env = dict(os.environ, OGX_TEST_POSTGRES_URL=pg.url, OGX_BENCH_POSTGRES_URL=pg.url)
        print(f"postgres_server: a private cluster on 127.0.0.1:{pg.port}", file=sys.stderr)
        child = subprocess.Popen(command, env=env)
        # Ctrl-C or SIGTERM reach the child; the cluster is stopped once it has exited.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda number, _frame: child.send_signal(number))
        return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
