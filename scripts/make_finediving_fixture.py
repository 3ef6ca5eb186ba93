#!/usr/bin/python3
"""Builds a tiny FineDiving-format fixture for tests/test_annotations.c.

The real FineDiving annotation files cannot be redistributed, so this writes a handful of made-up
dives with exactly the structure FORMATS.md describes (Python pickles, protocol 2, keys are
(video_name: str, instance: int) tuples, numpy int64 arrays for the frame labels and transitions):

  FineDiving_coarse_annotation.pkl          key -> {'action_type', 'start_frame', 'end_frame',
                                                    'dive_score', 'difficulty', 'judge_scores'}
  FineDiving_fine-grained_annotation.pkl    key -> {'action_type', 'dive_score', 'difficulty',
                                                    'steps_transit_frames', 'frames_labels',
                                                    'sub-action_types'}
  fine-grained_annotation_aqa.pkl           key -> [action_type, dive_score, difficulty,
                                                    steps_transit_frames, frames_labels]
  Sub_action_Types_Table.pkl                id -> name (42 entries, names as in FORMATS.md)
  train_split.pkl, test_split.pkl           lists of keys

Broken variants for the loader's error tests go to OUTDIR/bad_*/ (each a full set of the files
with one defect): bad_missing_field (coarse record of ('01', 3) lacks 'end_frame'),
bad_wrong_type ('frames_labels' of ('01', 12) is a str), bad_split_key (test split names a dive
that does not exist), bad_fraction (a float transition frame 20.5).

Special cases covered: a dive with fewer than 96 frames, one with a -1 in steps_transit_frames,
3-, 4- and 5-step dives, 3/5/7 judges, MTL-AQA-derived keys ('01', n).  The values are made up;
scores follow difficulty x (middle 3 of 7 | 0.6 x sum of 5 | sum of 3).

Usage: /usr/bin/python3 scripts/make_finediving_fixture.py [OUTDIR]  (default tests/data/finediving)
"""
import os
import pickle
import sys

import numpy as np

NAMES = {1: 'Forward', 2: 'Back', 3: 'Reverse', 4: 'Inward', 5: 'Arm.Forward', 6: 'Arm.Back',
         7: 'Arm.Reverse'}
for i, s in enumerate(['1', '1.5', '2', '2.5']):
    NAMES[8 + i] = '%s Som%s.Straight' % (s, '' if s == '1' else 's')
for i, s in enumerate(['1', '1.5', '2', '2.5', '3', '3.5', '4', '4.5']):
    NAMES[12 + i] = '%s Som%s.Pike' % (s, '' if s == '1' else 's')
for i, s in enumerate(['1', '1.5', '2', '2.5', '3', '3.5', '4', '4.5', '5.5']):
    NAMES[20 + i] = '%s Som%s.Tuck' % (s, '' if s == '1' else 's')
for i, s in enumerate(['0.5', '1', '1.5', '2', '2.5', '3', '3.5']):
    NAMES[29 + i] = '%s Twist%s' % (s, '' if s in ('0.5', '1') else 's')
NAMES.update({36: 'Entry', 37: '0.5 Som.Pike', 38: 'Background', 39: '0.5 Som.Straight',
              40: '0.5 Som.Tuck', 41: '4 Twists', 42: '4.5 Twists'})

# key, action_type, start_frame, n_frames, difficulty, judges, sub-action ids per step,
# transitions (index of the last frame before each change; None = derive from labels)
DIVES = [
    (('FINADivingWorldCup2021_Men3m_final_r1', 8), '407c', 3120, 110, 3.2,
     [8.5, 9.0, 8.5, 8.0, 9.0, 8.5, 8.0], [4, 25, 36], [20, 85]),
    (('FINADivingWorldCup2021_Women10m_semifinal_r2', 3), '5253b', 412, 70, 3.0,
     [7.0, 7.5, 7.0, 6.5, 7.0, 7.5, 7.0], [2, 15, 31, 36], [10, 30, 55]),  # 70 < 96 frames
    (('01', 3), '107b', 10036, 89, 3.1,
     [9.0, 9.5, 9.0, 9.0, 8.5, 9.0, 9.0], [1, 17, 36], [-1, 70]),  # -1: annotation noise
    (('01', 12), '205c', 21000, 96, 3.0,
     [8.0, 8.0, 7.5], [2, 24, 36], [22, 80]),  # 3 judges
    (('FINADivingOlympics2020_Men10m_synchro_r4', 1), '6245d', 777, 140, 3.6,
     [8.0, 8.5, 8.0, 7.5, 8.0], [6, 2, 13, 32, 36], [25, 50, 90, 120]),  # synchro: 5 judges, 5 steps
    (('02', 7), '305c', 5000, 120, 3.0,
     [7.5, 8.0, 7.5, 8.0, 8.5, 7.5, 8.0], [3, 23, 36], [30, 100]),
]
TRAIN = [0, 2, 4, 5]
TEST = [1, 3]


def score(dd, judges):
    j = sorted(judges)
    if len(j) == 7:
        return round(dd * sum(j[2:5]), 2)
    if len(j) == 5:
        return round(dd * 0.6 * sum(j), 2)
    return round(dd * sum(j), 2)


def labels_for(n, steps, trans):
    bounds = [t for t in trans if t >= 0]
    lab = np.empty(n, dtype=np.int64)
    start = 0
    # a -1 transition means the first step's end is unknown: the dive starts in step 2
    ids = steps[1:] if trans[0] < 0 else steps
    for k, b in enumerate(bounds + [n - 1]):
        lab[start:b + 1] = ids[k]
        start = b + 1
    return lab


def write(out, files):
    os.makedirs(out, exist_ok=True)
    for name, obj in files.items():
        if name in ('fine-grained_annotation_aqa.pkl', 'Sub_action_Types_Table.pkl') and 'bad_' in out:
            continue  # the loader's error tests need only the files it reads
        with open(os.path.join(out, name), 'wb') as f:
            pickle.dump(obj, f, protocol=2)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'tests/data/finediving'
    os.makedirs(out, exist_ok=True)
    coarse, fine, aqa = {}, {}, {}
    for key, at, start, n, dd, judges, steps, trans in DIVES:
        sc = score(dd, judges)
        tr = np.array(trans, dtype=np.int64)
        lab = labels_for(n, steps, trans)
        coarse[key] = {'action_type': at, 'start_frame': start, 'end_frame': start + n - 1,
                       'dive_score': sc, 'difficulty': dd, 'judge_scores': list(judges)}
        fine[key] = {'action_type': at, 'dive_score': sc, 'difficulty': dd,
                     'steps_transit_frames': tr, 'frames_labels': lab,
                     'sub-action_types': {s: NAMES[s] for s in steps}}
        aqa[key] = [at, sc, dd, tr, lab]
    files = {
        'FineDiving_coarse_annotation.pkl': coarse,
        'FineDiving_fine-grained_annotation.pkl': fine,
        'fine-grained_annotation_aqa.pkl': aqa,
        'Sub_action_Types_Table.pkl': NAMES,
        'train_split.pkl': [DIVES[i][0] for i in TRAIN],
        'test_split.pkl': [DIVES[i][0] for i in TEST],
    }
    write(out, files)

    import copy
    bad = copy.deepcopy(files)
    del bad['FineDiving_coarse_annotation.pkl'][('01', 3)]['end_frame']
    write(os.path.join(out, 'bad_missing_field'), bad)
    bad = copy.deepcopy(files)
    bad['FineDiving_fine-grained_annotation.pkl'][('01', 12)]['frames_labels'] = 'oops'
    write(os.path.join(out, 'bad_wrong_type'), bad)
    bad = copy.deepcopy(files)
    bad['test_split.pkl'].append(('FINADivingWorldCup2021_Men3m_final_r9', 99))
    write(os.path.join(out, 'bad_split_key'), bad)
    bad = copy.deepcopy(files)
    bad['FineDiving_fine-grained_annotation.pkl'][DIVES[0][0]]['steps_transit_frames'] = np.array([20.5, 85.0])
    write(os.path.join(out, 'bad_fraction'), bad)
    with open(os.path.join(out, 'VERSIONS.txt'), 'w') as f:
        f.write('written by scripts/make_finediving_fixture.py with python %s, numpy %s, pickle protocol 2\n'
                % (sys.version.split()[0], np.__version__))


if __name__ == '__main__':
    main()
