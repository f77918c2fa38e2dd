"""The ESP-IDF component manager (PyPI idf-component-manager, the code the espressif/idf
image runs during CMake) against a registry and a git remote that can be taken away.

Stands in for what is not here: the ESP Component Registry (a local HTTP server with the
registry's storage layout: components/<ns>/<name>.json, archives, CHECKSUMS.json) and the
tinyusb git repository (a local repository that can be moved away). The project mirrors
ports/esp32/main/idf_component.yml of MicroPython v1.28.0: mdns for every target,
lan867x for esp32 only, tinyusb from git for esp32s3; one lock file per target
(ports/esp32/lockfiles/dependencies.lock.<target>, as ports/esp32/CMakeLists.txt sets).
"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

# name, version, targets (None: all), as in the v1.28.0 lock files
REGISTRY_COMPONENTS = [("mdns", "1.1.0", None), ("lan867x", "1.0.3", ["esp32", "esp32p4"])]


def _git(*args):
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout.strip()


class Registry:
    """A fake ESP Component Registry on 127.0.0.1; stop() makes it unreachable."""

    def __init__(self, root):
        from idf_component_tools.hash_tools.calculate import hash_dir
        from idf_component_tools.hash_tools.checksums import ChecksumsManager
        from idf_component_tools.manager import ManifestManager

        self.root = Path(root)
        store = self.root / "storage"
        for sub in ("archives", "checksums", "components/espressif"):
            (store / sub).mkdir(parents=True, exist_ok=True)
        for name, version, targets in REGISTRY_COMPONENTS:
            src = self.root / "src" / name
            src.mkdir(parents=True)
            (src / "CMakeLists.txt").write_text("idf_component_register()\n")
            (src / f"{name}.c").write_text(f"int {name}_stub;\n")
            yml = f'version: "{version}"\ndependencies:\n  idf: ">=5.0"\n'
            if targets:
                yml += "targets:\n" + "".join(f"  - {t}\n" for t in targets)
            (src / "idf_component.yml").write_text(yml)
            manifest = ManifestManager(src, "test").load()
            exclude = set(manifest.exclude_set) | {"**/.component_hash", "**/CHECKSUMS.json"}
            digest = hash_dir(src, exclude=exclude, exclude_default=False)
            (src / ".component_hash").write_text(digest)
            with tarfile.open(store / "archives" / f"{name}-{version}.tgz", "w:gz") as tf:
                for f in sorted(src.iterdir()):
                    tf.add(f, arcname=f.name)
            sums = self.root / "sums" / name
            sums.mkdir(parents=True)
            ChecksumsManager(src).dump(sums)
            shutil.copy(sums / "CHECKSUMS.json", store / "checksums" / f"{name}-{version}.json")
            ver = {"component_hash": digest, "url": f"archives/{name}-{version}.tgz",
                   "checksums": f"checksums/{name}-{version}.json", "version": version,
                   "dependencies": [{"name": "idf", "source": "idf", "spec": ">=5.0"}],
                   "docs": {}, "license": None, "examples": []}
            if targets:
                ver["targets"] = targets
            (store / "components" / "espressif" / f"{name}.json").write_text(
                json.dumps({"name": name, "namespace": "espressif", "versions": [ver]}))
        serve_dir = str(self.root)
        holder = {}

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=serve_dir, **kw)

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.rstrip("/") == "/api":
                    body = json.dumps({"components_base_url": holder["url"] + "/storage", "info": "",
                                       "status": "ok", "version": "1"}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(body)
                    return
                super().do_GET()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = holder["url"] = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Project:
    """ports/esp32 as far as the component manager sees it."""

    def __init__(self, root, registry):
        self.root = Path(root)
        self.registry = registry
        self.git = self.root / "tinyusb-remote"
        self.git.mkdir(parents=True)
        (self.git / "CMakeLists.txt").write_text("idf_component_register()\n")
        (self.git / "idf_component.yml").write_text('version: "0.18.0"\ndependencies:\n  idf: ">=5.0"\n')
        _git("init", "-q", "-b", "main", str(self.git))
        _git("-C", str(self.git), "add", ".")
        _git("-C", str(self.git), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tinyusb")
        commit = _git("-C", str(self.git), "rev-parse", "HEAD")
        self.dir = self.root / "esp32"
        (self.dir / "main").mkdir(parents=True)
        (self.dir / "lockfiles").mkdir()
        (self.dir / "main" / "CMakeLists.txt").write_text("idf_component_register()\n")
        (self.dir / "main" / "idf_component.yml").write_text(f"""dependencies:
  espressif/mdns: "~1.1.0"
  espressif/tinyusb:
    rules:
      - if: "target in [esp32s2, esp32s3, esp32p4]"
    git: file://{self.git}
    version: {commit}
  espressif/lan867x:
    version: "~1.0.0"
    rules:
      - if: "target == esp32"
  idf:
    version: ">=5.3.0"
""")
        self.idf = self.root / "idf"
        (self.idf / "tools").mkdir(parents=True)
        self.runs = 0

    @property
    def managed(self):
        return self.dir / "managed_components"

    def components(self):
        return sorted(p.name for p in self.managed.iterdir()) if self.managed.exists() else []

    def cut_network(self, cache):
        """Registry down, git remote gone, and the git cache older than the manager's one-minute window."""
        self.registry.stop()
        self.git.rename(self.git.with_name("tinyusb-remote.gone"))
        for fetch_head in Path(cache).rglob("FETCH_HEAD"):
            os.utime(fetch_head, (0, 0))

    def prepare(self, target, env):
        """What CMake's configure step runs: solve against the target's lock file and fetch.
        Returns (ok, managed component names, last line of output)."""
        self.runs += 1
        build = self.root / f"build{self.runs}"
        build.mkdir()
        code = ("from idf_component_manager.core import ComponentManager\n"
                f"ComponentManager({str(self.dir)!r}, lock_path='lockfiles/dependencies.lock.{target}')"
                f".prepare_dep_dirs(managed_components_list_file={str(build / 'managed.cmake')!r}, "
                f"component_list_file={str(build / 'components.txt')!r})\n")
        full = {k: v for k, v in os.environ.items() if not k.startswith("IDF_COMPONENT")}
        full.update(env, IDF_TARGET=target, IDF_VERSION="5.5.1", IDF_PATH=str(self.idf),
                    IDF_COMPONENT_REGISTRY_URL=self.registry.url, NO_PROXY="127.0.0.1")
        proc = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=300)
        out = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "Error" in ln]
        return proc.returncode == 0, self.components(), out[-1] if out else ""
