"""transformers' own common model tests (`ModelTesterMixin`, `ConfigTester`) from its source distribution.

They live in the `tests/` folder of transformers' sdist on the package registry, not in the installed package.
`python tests/transformers_sdist.py` (run by `make transformers-tests`, a prerequisite of `make test`) downloads the
sdist of the installed version once with pip and keeps its `tests/` folder in `.cache/transformers-tests/<version>/`
(git-ignored). `import_common_tests` imports them from there; it never uses the network and skips the calling test
module when they are missing.
"""

import importlib
import os
import subprocess
import sys
import tarfile
import tempfile
import types
import warnings
from importlib.metadata import version as installed_version
from pathlib import Path

INSTALLED = installed_version("transformers")
CACHE_ROOT = Path(__file__).resolve().parents[1] / ".cache" / "transformers-tests"
NEEDED = ("test_modeling_common.py", "test_configuration_common.py")
PACKAGE = "transformers_sdist_tests"


def tests_folder(version: str = INSTALLED) -> Path:
    return CACHE_ROOT / version / "tests"


def is_cached(version: str = INSTALLED) -> bool:
    return all((tests_folder(version) / name).is_file() for name in NEEDED)


def fetch(version: str = INSTALLED) -> Path:
    """Download transformers==`version`'s sdist with pip (once) and keep its top-level `tests/*.py` in the cache."""
    target = tests_folder(version)
    if is_cached(version):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             "--retries", "2", "--timeout", "30", "--dest", tmp, f"transformers=={version}"],
            check=True,
        )
        sdists = list(Path(tmp).glob("transformers-*.tar.gz"))
        if len(sdists) != 1:
            raise RuntimeError(f"pip download gave {[path.name for path in Path(tmp).iterdir()]}, not one sdist")
        sdist = sdists[0]
        staging = Path(tmp) / "tests"
        staging.mkdir()
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                parts = member.name.split("/")  # transformers-<version>/tests/<file>
                if member.isfile() and len(parts) == 3 and parts[1] == "tests" and parts[2].endswith(".py"):
                    (staging / parts[2]).write_bytes(archive.extractfile(member).read())
        missing = [name for name in NEEDED if not (staging / name).is_file()]
        if missing:
            raise RuntimeError(f"{sdist.name} has no tests/{', tests/'.join(missing)}")
        # the sdist leaves out tests/__init__.py, which test_configuration_common.py imports its own folder through
        (staging / "__init__.py").touch()
        if not is_cached(version):
            staging.rename(target)
    return target


def _stub_module(name: str, **attributes) -> None:
    module = types.ModuleType(f"{PACKAGE}.{name}")
    module.__dict__.update(attributes)
    sys.modules[module.__name__] = module


def import_common_tests() -> types.SimpleNamespace:
    """`modeling` (test_modeling_common) and `configuration` (test_configuration_common) of the installed version.

    Skips the calling test module, with the reason, when the sdist's tests are not cached or `parameterized` (a test
    dependency of transformers' suite) is not installed.
    """
    import pytest

    if not is_cached():
        pytest.skip(
            f"transformers {INSTALLED}'s common tests are not in {tests_folder()}: run "
            "`make transformers-tests` (downloads the sdist from the package registry once)",
            allow_module_level=True,
        )
    pytest.importorskip(
        "parameterized", reason="transformers' common tests need `parameterized` (pip install -e '.[test]')"
    )
    if PACKAGE not in sys.modules:
        package = types.ModuleType(PACKAGE)
        package.__path__ = [os.fspath(tests_folder())]
        sys.modules[PACKAGE] = package
        # Sub-packages of transformers' tests/ that the sdist does not ship; the two modules import them.
        # - exporters.test_export: the base class of ModelTesterMixin with the torch.export / ONNX export tests,
        #   which therefore do not run here.
        # - generation.test_utils: GenerationTesterMixin, only checked for models that can generate (not this one).
        # - utils.test_configuration_utils: config_common_kwargs, read only by ConfigTester.check_config_arguments_init
        #   for configs without sub-configs (SiaSamReaConfig has two, so it returns before reading them).
        for name in ("exporters", "generation", "utils"):
            _stub_module(name, __path__=[])
        _stub_module("exporters.test_export", ExportTesterMixin=type("ExportTesterMixin", (), {}))
        _stub_module("generation.test_utils", GenerationTesterMixin=type("GenerationTesterMixin", (), {}))
        _stub_module("utils.test_configuration_utils", config_common_kwargs={})
    with warnings.catch_warnings():
        # their marks (flash_attn_test, torch_compile_test, ...) are registered by transformers' own conftest.py
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        return types.SimpleNamespace(
            modeling=importlib.import_module(f"{PACKAGE}.test_modeling_common"),
            configuration=importlib.import_module(f"{PACKAGE}.test_configuration_common"),
        )


def main() -> int:
    try:
        print(f"transformers {INSTALLED}'s common tests: {fetch()}")
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        print(
            f"could not fetch transformers {INSTALLED}'s sdist ({error}); "
            "tests/test_modeling_common.py will be skipped",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
