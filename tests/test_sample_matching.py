"""Sample-sheet rows match images by one rule everywhere; two rows for one image refused."""

import pandas as pd
import pytest

from histo_fms.io import InputError, image_stem, match_sample, read_sample_sheet
from histo_fms.stats import apply_sample_sheet


def _sheet(tmp_path, rows):
    p = tmp_path / "samples.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


def test_two_rows_for_one_file_refused(tmp_path):
    p = _sheet(tmp_path, [
        {"image": "drg_m1_fms", "animal": "m1", "group": "FMS", "control": "false"},
        {"image": "drg_m2_fms.ome.tif", "animal": "m2", "group": "FMS", "control": "false"},
        {"image": "drg_m1_fms.ome.tif", "animal": "m4", "group": "ctrl", "control": "true"},
    ])
    with pytest.raises(InputError) as exc:
        read_sample_sheet(p)
    msg = str(exc.value)
    assert "samples.csv" in msg and "rows 2 and 4" in msg and "drg_m1_fms" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("row", ["drg_m1_fms", "drg_m1_fms.ome.tif", "data/drg_m1_fms.ome.tif",
                                 "drg_m1_fms.OME.TIF"])
def test_one_rule_for_batch_and_statistics(tmp_path, row):
    p = _sheet(tmp_path, [{"image": row, "animal": "m1", "group": "FMS", "control": "no"},
                          {"image": "drg_m1_fms_b", "animal": "x", "group": "HC"}])
    sheet = read_sample_sheet(p)
    path = tmp_path / "in" / "drg_m1_fms.ome.tif"
    assert match_sample(sheet, path, image_stem(path))["animal"] == "m1"
    summ = apply_sample_sheet(pd.DataFrame({"image": ["drg_m1_fms.ome.tif"]}), sheet)
    assert summ.loc[0, "animal"] == "m1"


def test_dotted_stems_and_case(tmp_path):
    sheet = read_sample_sheet(_sheet(tmp_path, [
        {"image": "m1.v2", "animal": "a"}, {"image": "M1.v2.czi", "animal": "b"}]))
    assert match_sample(sheet, tmp_path / "m1.v2.ome.tif", "m1.v2")["animal"] == "a"
    assert match_sample(sheet, tmp_path / "M1.v2.czi", "M1.v2")["animal"] == "b"
    assert match_sample(sheet, tmp_path / "m1.ome.tif", "m1") is None
    summ = apply_sample_sheet(pd.DataFrame({"image": ["m1.v2.ome.tif", "M1.v2.czi"]}), sheet)
    assert summ["animal"].tolist() == ["a", "b"]
    assert image_stem("x.ome.zarr") == "x" == image_stem("x.ome.zarr/")


def test_control_column_strict(tmp_path):
    with pytest.raises(InputError, match="control.*maybe"):
        read_sample_sheet(_sheet(tmp_path, [{"image": "a", "control": "maybe"}]))
    sheet = read_sample_sheet(_sheet(tmp_path, [{"image": "a", "control": "control"},
                                                {"image": "b", "control": ""}]))
    assert sheet["control"].tolist() == [True, False]
