"""The slicer's pure parts: G-code metrics (every format the seed lists), model validation, options,
settings, the command line, prices."""

from __future__ import annotations

import zipfile
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
import trimesh
from pydantic import ValidationError

from studio.slicing import estimate, gcode, mesh, pricing, runner, samples, service as slicing
from studio.slicing.options import SliceOptions
from studio.slicing.settings import SlicerSettings
from tests.slicing_world import script

LIMITS = {"max_bytes": 10_000_000, "max_triangles": 1_000_000}


@pytest.mark.parametrize("text, seconds", [
    ("1h 23m 45s", 5025), ("2h 5m", 7500), ("15m 30s", 930), ("45s", 45), ("02:10:00", 7800),
    ("1d 2h 3m 4s", 93784), ("3d 0h 0m 1s", 259201), ("1:02:03:04", 93784), (" 10m ", 600),
])
def test_durations(text, seconds):
    assert gcode.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1h 2x", "10:00", "h m s"])
def test_not_durations(text):
    with pytest.raises(ValueError):
        gcode.parse_duration(text)


@pytest.mark.parametrize("text, grams, seconds", [
    ("; filament used = 12.5 g\n; estimated printing time = 1h 23m 45s\n", 12.5, 5025),
    ("; filament used [g] = 7.31\n; estimated printing time (normal mode) = 2h 5m\n", 7.31, 7500),
    ("; filament used [g] = 1.20, 3.40\n; estimated printing time (normal mode) = 15m 30s\n", 4.6, 930),
    ("; total filament used [g] = 9.99\n; filament used [g] = 9.99\n; estimated printing time = 02:10:00", 9.99, 7800),
    ("; estimated printing time (silent mode) = 3h\n; estimated printing time (normal mode) = 1d 2h 3m 4s\n"
     "; filament used [g] = 2\n", 2.0, 93784),
    ("; FILAMENT USED = 3 g\n; Estimated Printing Time: x = 45s\n", 3.0, 45),
])
def test_gcode_metrics(text, grams, seconds):
    assert gcode.parse_text(text) == gcode.Metrics(grams, seconds)


@pytest.mark.parametrize("text", ["; filament used [mm] = 100\n; estimated printing time = 1h\n",
                                  "; filament used [g] = 3\n"])
def test_gcode_without_metrics(text):
    with pytest.raises(gcode.GcodeMetricsMissing):
        gcode.parse_text(text)


def test_metrics_at_either_end_of_a_long_file(tmp_path):
    body = "G1 X1 Y1\n" * 200_000
    tail = tmp_path / "tail.gcode"
    tail.write_text(body + "; filament used [g] = 4.03\n; estimated printing time (normal mode) = 21m 47s\n")
    head = tmp_path / "head.gcode"
    head.write_text("; filament used = 4 g\n; estimated printing time = 00:21:47\n" + body)
    assert gcode.parse_file(tail) == gcode.Metrics(4.03, 1307)
    assert gcode.parse_file(head) == gcode.Metrics(4.0, 1307)


@pytest.mark.parametrize("name, data", [
    ("cube.stl", samples.stl(samples.cube())),
    ("cube.STL", samples.stl(samples.cube(), ascii=True)),
    ("parts.3mf", samples.to_3mf(samples.cube(), samples.cylinder())),
])
def test_models_read(name, data):
    info, kind = mesh.inspect(data, name, **LIMITS)
    assert kind == ("3mf" if name.endswith("3mf") else "stl")
    assert info.watertight and info.triangles >= 12
    if kind == "stl":
        assert info.size_mm == (20.0, 20.0, 20.0) and info.volume_mm3 == pytest.approx(8000)
    else:  # side by side: 20 + 5 + 20 mm wide, the cylinder's 30 mm tall
        assert info.size_mm[0] == pytest.approx(45) and info.size_mm[2] == pytest.approx(30)
        assert info.volume_mm3 == pytest.approx(8000 + samples.cylinder().volume, rel=1e-6)


def _zip(parts: dict[str, bytes]) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize("name, data, reason", [
    ("a.stl", b"", "empty"),
    ("a.stl", b"solid x\nendsolid x\n", "no-triangles"),
    ("a.stl", b"\x00" * 80 + b"\x05\x00\x00\x00" + b"\x01" * 20, "no-triangles"),  # truncated binary
    ("a.3mf", b"not a zip", "not-a-mesh"),
    ("a.3mf", _zip({"3D/other.model": b"<model/>"}), "not-a-mesh"),
    ("a.3mf", _zip({"3D/3dmodel.model": b"<model><broken"}), "not-a-mesh"),
    ("a.obj", b"v 0 0 0", "unsupported-type"),
    ("big.stl", samples.stl(samples.sphere(2000)), "too-large"),
])
def test_models_refused(name, data, reason):
    with pytest.raises(mesh.InvalidModel) as refused:
        mesh.inspect(data, name, max_bytes=50_000, max_triangles=1000)
    assert refused.value.reason == reason, str(refused.value)


def test_too_many_triangles():
    with pytest.raises(mesh.InvalidModel) as refused:
        mesh.inspect(samples.stl(samples.sphere(5000)), "s.stl", max_bytes=10**7, max_triangles=1000)
    assert refused.value.reason == "too-many-triangles"


@pytest.mark.parametrize("size, volume, fits", [
    ((20, 20, 20), (250, 210, 210), True), ((240, 200, 10), (250, 210, 210), True),
    ((200, 240, 10), (250, 210, 210), True), ((260, 100, 10), (250, 210, 210), False),
    ((100, 100, 211), (250, 210, 210), False),
])
def test_fits_build_volume(size, volume, fits):
    assert mesh.fits(size, volume) is fits


@pytest.mark.parametrize("body", [
    {"layerHeight": 0}, {"layerHeight": 0.5}, {"infill": 101}, {"infill": -1},
    {"supports": {"enabled": True, "angle": 0}}, {"supports": {"enabled": True, "angle": 90}},
    {"supports": {"enabled": True, "pattern": "organic"}}, {"colour": "red"},
])
def test_options_refused(body):
    with pytest.raises(ValidationError):
        SliceOptions(**body)


def test_options_canonical_ignores_float_noise():
    assert SliceOptions(layerHeight=0.2).canonical() == SliceOptions(layerHeight=0.2000000001).canonical()
    assert SliceOptions(infill=20).canonical() != SliceOptions(infill=25).canonical()


@pytest.mark.parametrize("env, ok", [
    ({"SLICER_CONCURRENCY": "4"}, True), ({"SLICER_CONCURRENCY": "5"}, False), ({"SLICER_CONCURRENCY": "0"}, False),
    ({"SLICER_TIMEOUT_MS": "30000"}, True), ({"SLICER_TIMEOUT_MS": "29999"}, False),
    ({"SLICER_TIMEOUT_MS": "300001"}, False), ({"SLICER_DISABLE": "1"}, True), ({"SLICER_BIN": "/x/slicer"}, True),
])
def test_settings_ranges(monkeypatch, env, ok):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if ok:
        s = SlicerSettings()
        assert s.disable is (env.get("SLICER_DISABLE") == "1")
        assert s.bin == env.get("SLICER_BIN", "prusa-slicer")
    else:
        with pytest.raises(ValidationError):
            SlicerSettings()


def test_command_line_supports(monkeypatch):
    monkeypatch.setattr(runner, "support_styles", lambda binary: frozenset({"grid", "snug"}))
    opts = SliceOptions(layerHeight=0.15, infill=100, supports={"enabled": True, "pattern": "tree", "angle": 40})
    args, notes, style = runner.command("/bin/ps", Path("m.stl"), Path("o.gcode"), opts, runner.DEFAULT_PROFILES)
    joined = " ".join(args)
    assert "--export-gcode --layer-height 0.15" in joined and "--fill-density 100%" in joined
    assert "--support-material --support-material-threshold 40 --support-material-style snug" in joined
    assert "--fill-pattern rectilinear" in joined and joined.endswith("--output o.gcode m.stl")
    assert notes and "organic" in notes[0] and style == "snug"
    monkeypatch.setattr(runner, "support_styles", lambda binary: frozenset({"grid", "snug", "organic"}))
    args, notes, style = runner.command("/bin/ps", Path("m.stl"), Path("o.gcode"), opts, ())
    assert "--support-material-style organic" in " ".join(args) and notes == [] and style == "organic"
    normal = SliceOptions(supports={"enabled": True})
    assert runner.command("/bin/ps", Path("m.stl"), Path("o.gcode"), normal, ()).support_style == "grid"
    assert runner.command("/bin/ps", Path("m.stl"), Path("o.gcode"), SliceOptions(), ()).support_style is None


def test_command_line_slices_on_the_printers_bed():
    """The printer's build volume is the slicer's bed and height limit, given after the profiles
    (a later option wins), so the profile's 250 x 210 bed does not refuse a larger printer's model."""
    args = runner.command("/bin/ps", Path("m.stl"), Path("o.gcode"), SliceOptions(), runner.DEFAULT_PROFILES,
                          (360.0, 250.5, 320.0)).args
    joined = " ".join(args)
    assert "--bed-shape 0x0,360x0,360x250.5,0x250.5 --max-print-height 320" in joined
    assert joined.index("--bed-shape") > joined.rindex("--load")
    assert "--bed-shape" not in runner.command("/bin/ps", Path("m.stl"), Path("o.gcode"), SliceOptions(), ()).args


def test_command_line_gives_the_materials_filament():
    """The chosen material's density (and diameter, when known) override the profile's 1.24 g/cm³."""
    args = runner.command("/bin/ps", Path("m.stl"), Path("o.gcode"), SliceOptions(), runner.DEFAULT_PROFILES,
                          density=Decimal("3.000"), diameter=2.85).args
    joined = " ".join(args)
    assert "--filament-density 3 --filament-diameter 2.85" in joined
    assert joined.index("--filament-density") > joined.rindex("--load")  # after the profiles: it wins
    assert "--filament-density" not in runner.command("/bin/ps", Path("m.stl"), Path("o.gcode"), SliceOptions(), ()).args


def test_the_cache_key_tells_printers_beds_and_densities_apart():
    opts, profiles = SliceOptions(), runner.DEFAULT_PROFILES
    key = slicing.cache_key("abc", opts, profiles, (250.0, 210.0, 210.0), density=Decimal("1.240"))
    assert key == slicing.cache_key("abc", opts, profiles, (250, 210, 210), density=1.24)
    assert key != slicing.cache_key("abc", opts, profiles, (360.0, 360.0, 360.0), density=1.24)
    assert key != slicing.cache_key("abc", opts, profiles, (250.0, 210.0, 220.0), density=1.24)
    assert key != slicing.cache_key("abc", opts, profiles, (250.0, 210.0, 210.0), density=3)
    assert slicing.profile_text(profiles, (360, 360, 360)) == "fff_generic_mk3.ini,pla_generic.ini,bed 360x360x360"


HELP = "echo ' --support-material-style'\necho '    Style of supports. (grid, snug, organic; default: grid)'\n"


def test_the_support_styles_probe_keeps_only_an_answer(tmp_path):
    """A probe that times out is no answer: it is not kept, and a later probe (after ``retry_s``)
    asks again and keeps what the slicer says."""
    flag = tmp_path / "hang"
    flag.touch()
    binary = script(tmp_path / "slicer.sh", f"if [ -e {flag} ]; then sleep 30; fi\n{HELP}")
    probe = runner.StyleProbe(timeout_s=0.5, retry_s=0.0)
    assert probe.styles(binary) == frozenset()  # timed out
    flag.unlink()
    assert probe.styles(binary) == {"grid", "snug", "organic"}  # asked again: the answer
    flag.touch()
    assert probe.styles(binary) == {"grid", "snug", "organic"}  # kept: not asked again
    failing = script(tmp_path / "broken.sh", f"{HELP}exit 1\n")
    assert probe.styles(failing) == frozenset()
    waiting = runner.StyleProbe(timeout_s=0.5, retry_s=60.0)
    flag2 = tmp_path / "hang2"
    flag2.touch()
    slow = script(tmp_path / "slow.sh", f"if [ -e {flag2} ]; then sleep 30; fi\n{HELP}")
    assert waiting.styles(slow) == frozenset()
    flag2.unlink()
    assert waiting.styles(slow) == frozenset()  # within retry_s: not probed again (no 30 s per slice)


def test_quote_lines_say_which_supports_were_used_and_keep_an_estimates_notes():
    options = {"layerHeight": 0.2, "infill": 20, "supports": {"enabled": True, "pattern": "tree", "angle": 45}}
    metrics = {"grams": 12.4, "timeSec": 3900}
    snug = pricing.describe("part.stl", "PLA", options, metrics, False, False, support_style="snug")
    assert "snug supports (tree asked)" in snug and "tree supports" not in snug
    organic = pricing.describe("part.stl", "PLA", options, metrics, False, False, support_style="organic")
    assert ", tree supports ·" in organic and "asked" not in organic
    normal = {**options, "supports": {"enabled": True, "pattern": "normal", "angle": 45}}
    assert ", normal supports ·" in pricing.describe("p.stl", "PLA", normal, metrics, False, False,
                                                    support_style="grid")
    notes = slicing.estimate_notes(SliceOptions(**options))
    line = pricing.describe("part.stl", "PLA", options, metrics, True, True, notes=notes)
    assert "12 g, 1h 05m (estimated)" in line and line.endswith(" · rush")
    assert all(note in line for note in notes) and "estimated from the model's shape" in line


def test_price_breakdown():
    price = pricing.price_model(100, 7200, cost_per_kg=Decimal("30"), hourly_rate=Decimal("4"),
                                setup_fee=Decimal("5"), margin_percent=Decimal("50"), minimum_price=Decimal("10"),
                                rush_multiplier=Decimal("1.5"), quantity=3)
    # material 3.00 + machine 8.00 + setup 5.00 = 16.00, +50 % = 24.00
    assert (price.material, price.machine, price.setup, price.margin) == (Decimal("3.00"), Decimal("8.00"),
                                                                         Decimal("5.00"), Decimal("8.00"))
    assert price.unit_price == Decimal("24.00") and price.total == Decimal("72.00") and not price.minimum_applied
    rush = pricing.price_model(100, 7200, cost_per_kg=Decimal("30"), hourly_rate=Decimal("4"), setup_fee=Decimal("5"),
                               margin_percent=Decimal("50"), minimum_price=Decimal("10"),
                               rush_multiplier=Decimal("1.5"), rush=True, quantity=3)
    assert rush.unit_price == Decimal("36.00") and rush.total == Decimal("108.00")
    tiny = pricing.price_model(1, 60, cost_per_kg=Decimal("30"), hourly_rate=Decimal("4"), setup_fee=Decimal("0"),
                               margin_percent=Decimal("0"), minimum_price=Decimal("10"))
    assert tiny.unit_price == Decimal("10.00") and tiny.minimum_applied


@pytest.mark.parametrize("grams, seconds", [(6.1, 1543), (0.37, 61), (123.456, 98765), (14.9, 3599)])
def test_the_breakdown_adds_up_to_the_unit_price(grams, seconds):
    """Parts rounded on their own once summed to 14.51 beside a unit price of 14.50 (the review's)."""
    price = pricing.price_model(grams, seconds, cost_per_kg=Decimal("29.9"), hourly_rate=Decimal("3.35"),
                                setup_fee=Decimal("5"), margin_percent=Decimal("30"), minimum_price=Decimal("1"))
    assert price.material + price.machine + price.setup + price.margin == price.unit_price
    assert all(v == v.quantize(Decimal("0.01")) for v in (price.material, price.machine, price.margin))


def test_an_open_mesh_is_measured_by_its_convex_hull():
    """Real-world STLs are often not closed: such a model is measured (its hull's volume, an honest
    upper bound), never refused with a server error (the review's open box: a 500 before)."""
    box = samples.cube()
    box.update_faces([i not in (0, 1) for i in range(len(box.faces))])  # two triangles of one side gone
    info, kind = mesh.inspect(samples.stl(box), "open.stl", **LIMITS)
    assert kind == "stl" and not info.watertight and info.triangles == 10
    assert info.size_mm == (20.0, 20.0, 20.0) and info.volume_mm3 == pytest.approx(8000)


def with_unit(data: bytes, unit: str | None) -> bytes:
    """The 3MF ``data`` with its <model unit> set to ``unit`` (None: no unit, the spec's millimetres)."""
    source, out = zipfile.ZipFile(BytesIO(data)), BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            part = source.read(name)
            if name.lower() == "3d/3dmodel.model":
                part = part.replace(b'unit="millimeter"', f'unit="{unit}"'.encode() if unit else b"")
            target.writestr(name, part)
    return out.getvalue()


@pytest.mark.parametrize("unit, side, expected", [
    ("centimeter", 2.0, 20.0), ("inch", 1.0, 25.4), ("micron", 20_000.0, 20.0), ("foot", 0.1, 30.48),
    ("meter", 0.02, 20.0), ("millimeter", 20.0, 20.0), (None, 20.0, 20.0),
])
def test_a_3mf_is_measured_in_millimetres_whatever_its_unit(unit, side, expected):
    data = with_unit(samples.to_3mf(samples.cube(side)), unit)
    assert (b'unit="' + unit.encode() + b'"' in data) if unit else b"unit=" not in data
    info, kind = mesh.inspect(data, "cube.3mf", **LIMITS)
    assert kind == "3mf" and info.size_mm == pytest.approx((expected,) * 3)
    assert info.volume_mm3 == pytest.approx(expected ** 3, rel=1e-6)
    assert mesh.read(data, "3mf", process=False).extents == pytest.approx((expected,) * 3)  # the fallback's read


def test_a_3mf_in_an_unknown_unit_is_refused():
    with pytest.raises(mesh.InvalidModel) as refused:
        mesh.inspect(with_unit(samples.to_3mf(samples.cube()), "furlong"), "cube.3mf", **LIMITS)
    assert refused.value.reason == "unknown-unit" and "furlong" in str(refused.value)


def test_a_bad_slicer_setting_stops_the_api_in_one_line(monkeypatch):
    """``SLICER_CONCURRENCY=5 storehouse api``: one line naming the setting and its range, no traceback."""
    from typer.testing import CliRunner

    from storehouse.cli import app

    monkeypatch.setenv("SLICER_CONCURRENCY", "5")
    result = CliRunner().invoke(app, ["api"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "SLICER_CONCURRENCY=5" in lines[0] and "allowed 1 to 4" in lines[0] and "Traceback" not in result.output


@pytest.mark.parametrize("ascii", [False, True])
def test_the_fallback_reads_a_stored_stl_as_trimesh_does(ascii):
    """The fallback's own binary STL reader (numpy, no merging) measures what trimesh's reader
    measures; an ASCII STL still goes through trimesh."""
    model = samples.sphere(5_000)
    data = samples.stl(model, ascii=ascii)
    fast = mesh.read(data, mesh.STL, process=False)
    slow = trimesh.load(BytesIO(data), file_type="stl", force="mesh", process=False)
    assert len(fast.faces) == len(slow.faces) == len(model.faces)
    assert fast.bounds == pytest.approx(slow.bounds, abs=1e-4)
    assert estimate.estimate(fast, SliceOptions(), 1.24) == estimate.estimate(slow, SliceOptions(), 1.24)
