"""`mpspec test` (preset steps) and harness/setup.sh (with stub dpkg-query / apt-get)."""

import os
import shutil
import subprocess
import unittest
from unittest import mock

import support
from mpspec_cli import build
from mpspec_cli.errors import UserError


class PresetTest(unittest.TestCase):
    def steps(self, preset, extra=()):
        calls = []
        with mock.patch.object(build, "_step", side_effect=lambda c: calls.append(c) or 0), \
             mock.patch.object(build, "_require"), mock.patch.object(build.os, "chdir"):
            rc = build.run_tests(preset, list(extra))
        self.assertEqual(rc, 0)
        return calls

    def test_workflow_when_defined(self):
        self.assertEqual(self.steps("default"), [["cmake", "--workflow", "--preset", "default"]])

    def test_three_steps_otherwise(self):
        doc = build.presets()
        if "tsan" in build.preset_names(doc, "workflowPresets"):
            self.skipTest("tsan has a workflow preset now")
        self.assertEqual(self.steps("tsan"), [["cmake", "--preset", "tsan"],
                                              ["cmake", "--build", "--preset", "tsan"],
                                              ["ctest", "--preset", "tsan"]])

    def test_ctest_arguments_force_the_steps(self):
        calls = self.steps("default", ["-L", "harness"])
        self.assertEqual(calls[-1], ["ctest", "--preset", "default", "-L", "harness"])

    def test_failed_step_stops(self):
        calls = []
        with mock.patch.object(build, "_step", side_effect=lambda c: calls.append(c) or 4), \
             mock.patch.object(build, "_require"), mock.patch.object(build.os, "chdir"):
            self.assertEqual(build.run_tests("tsan", []), 4)
        self.assertEqual(len(calls), 1)

    def test_unknown_preset(self):
        with self.assertRaises(UserError):
            build.check_preset("nosuch")

    def test_binary_dirs(self):
        doc = build.presets()
        self.assertEqual(build.preset_binary_dir(doc, "asan"), os.path.join(support.ROOT, "build", "asan"))
        self.assertEqual(build.default_build_dir(), os.path.join(support.ROOT, "build", "default"))


@unittest.skipUnless(shutil.which("bash"), "needs bash")
class SetupScriptTest(unittest.TestCase):
    """Runs harness/setup.sh with PATH holding only stubs and the few tools it uses."""

    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.bin = os.path.join(self.tmp.path, "bin")
        self.log = os.path.join(self.tmp.path, "apt.log")
        os.makedirs(self.bin)
        for tool in ("grep", "sed", "sort", "env", "cat"):
            path = shutil.which(tool)
            if path:
                os.symlink(path, os.path.join(self.bin, tool))

    def stub(self, name, body):
        path = support.write(os.path.join(self.bin, name), "#!%s\n%s\n" % (shutil.which("bash"), body))
        os.chmod(path, 0o755)

    def run_setup(self, installed, commands=("cmake", "g++")):
        lines = "\\n".join("%s ii " % p for p in installed)
        self.stub("dpkg-query", "printf '%b\\n' '" + lines + "'")
        self.stub("apt-get", 'echo "apt-get $*" >> "%s"' % self.log)
        self.stub("sudo", '"$@"')
        for c in commands:
            self.stub(c, "echo 'cmake version 3.25.1'")
        env = {"PATH": self.bin, "HOME": self.tmp.path}
        p = subprocess.run([shutil.which("bash"), os.path.join(support.HARNESS, "setup.sh")],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=30)
        calls = []
        if os.path.exists(self.log):
            with open(self.log) as f:
                calls = f.read().splitlines()
        return p.returncode, p.stdout + p.stderr, calls

    ALL = ["libgtest-dev", "librapidcheck-dev", "libbenchmark-dev", "nlohmann-json3-dev",
           "libssl-dev", "python3", "python3-multiprocess", "python3-fasteners",
           "libboost-dev", "chromium", "fonts-dejavu-core"]

    def test_quiet_when_everything_is_present(self):
        rc, out, calls = self.run_setup(self.ALL)
        self.assertEqual((rc, out, calls), (0, "", []))

    def test_installs_only_what_is_missing(self):
        rc, out, calls = self.run_setup([p for p in self.ALL if p != "librapidcheck-dev"],
                                        commands=("g++",))
        self.assertEqual(rc, 0, out)
        self.assertIn("installing missing Debian packages: librapidcheck-dev cmake", out)
        self.assertEqual(len(calls), 2)
        self.assertTrue(calls[0].startswith("apt-get update"))
        self.assertTrue(calls[1].startswith("apt-get install"))
        self.assertTrue(calls[1].endswith("librapidcheck-dev cmake"), calls[1])

    def test_optional_packages_are_best_effort(self):
        required = [p for p in self.ALL if p != "python3-multiprocess"]
        rc, out, calls = self.run_setup(required)
        self.assertEqual(rc, 0, out)
        self.assertIn("installing missing optional packages: python3-multiprocess", out)
        self.assertEqual(calls, ["apt-get update -qq",
                                 "apt-get install -y -qq --no-install-recommends "
                                 "python3-multiprocess"])
        # A failed optional install is reported and does not fail setup.
        self.stub("apt-get", 'echo "apt-get $*" >> "%s"; exit 100' % self.log)
        os.chmod(os.path.join(self.bin, "apt-get"), 0o755)
        lines = "\\n".join("%s ii " % p for p in required)
        self.stub("dpkg-query", "printf '%b\\n' '" + lines + "'")
        env = {"PATH": self.bin, "HOME": self.tmp.path}
        p = subprocess.run([shutil.which("bash"), os.path.join(support.HARNESS, "setup.sh")],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("could not install the optional packages python3-multiprocess", p.stderr)


if __name__ == "__main__":
    unittest.main()
