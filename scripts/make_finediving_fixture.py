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

Special cases covered: a dive with fewer than 96 frames, 3-, 4- and 5-step dives, a label that
recurs within a dive (distinct labels < transitions + 1), 3/5/7 judges, MTL-AQA-derived keys
('01', n), and each fault of the real release's steps_transit_frames (FORMATS.md), on made-up
dives of the same shape (the release itself is never copied):
  ('01', 3)   [-1, 70]       a -1 entry (the labels change after 25 and 70)
  ('03', 67)  [-1, 51, 35]   a -1 entry and entries out of order (labels change after 14, 35, 51)
  ('05', 56)  [99, 133]      entries past the 89 frame labels (labels change after 28 and 57)
  ('14', 3)   [30, 70]       in range and ordered, but not where the labels change (30, 75)
The loader derives those from frames_labels.  The values are made up; scores follow
difficulty x (middle 3 of 7 | 0.6 x sum of 5 | sum of 3).

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
# label changes (index of the last frame of each step but the last), published transitions
# (None: the label changes, as in a sound dive)
DIVES = [
    (('FINADivingWorldCup2021_Men3m_final_r1', 8), '407c', 3120, 110, 3.2,
     [8.5, 9.0, 8.5, 8.0, 9.0, 8.5, 8.0], [4, 25, 36], [20, 85], None),
    (('FINADivingWorldCup2021_Women10m_semifinal_r2', 3), '5253b', 412, 70, 3.0,
     [7.0, 7.5, 7.0, 6.5, 7.0, 7.5, 7.0], [2, 15, 31, 36], [10, 30, 55], None),  # 70 < 96 frames
    (('01', 3), '107b', 10036, 89, 3.1,
     [9.0, 9.5, 9.0, 9.0, 8.5, 9.0, 9.0], [1, 17, 36], [25, 70], [-1, 70]),  # fault: -1
    (('01', 12), '205c', 21000, 96, 3.0,
     [8.0, 8.0, 7.5], [2, 24, 36], [22, 80], None),  # 3 judges
    (('FINADivingOlympics2020_Men10m_synchro_r4', 1), '6245d', 777, 140, 3.6,
     [8.0, 8.5, 8.0, 7.5, 8.0], [6, 2, 13, 32, 36], [25, 50, 90, 120], None),  # synchro: 5 judges, 5 steps
    (('02', 7), '305c', 5000, 120, 3.0,
     [7.5, 8.0, 7.5, 8.0, 8.5, 7.5, 8.0], [3, 23, 36], [30, 100], None),
    (('03', 67), '5337d', 7200, 100, 3.3,
     [6.0, 6.5, 6.0, 5.5, 6.0, 6.5, 6.0], [3, 21, 32, 36], [14, 35, 51], [-1, 51, 35]),  # faults: -1, order
    (('05', 56), '109c', 8800, 89, 3.6,
     [7.0, 7.0, 6.5, 7.5, 7.0, 7.0, 6.5], [1, 26, 36], [28, 57], [99, 133]),  # fault: past the labels
    (('14', 3), '207b', 2400, 100, 3.6,
     [8.0, 8.5, 8.5, 8.0, 9.0, 8.5, 8.0], [2, 17, 36], [30, 75], [30, 70]),  # fault: elsewhere
    (('07', 9), '5335d', 9300, 110, 3.0,
     [7.5, 7.5, 8.0, 7.0, 7.5, 8.0, 7.5], [5, 29, 13, 29, 36], [15, 40, 70, 95], None),  # 29 recurs
]
TRAIN = [0, 2, 4, 5, 6, 7]
TEST = [1, 3, 8, 9]


def score(dd, judges):
    j = sorted(judges)
    if len(j) == 7:
        return round(dd * sum(j[2:5]), 2)
    if len(j) == 5:
        return round(dd * 0.6 * sum(j), 2)
    return round(dd * sum(j), 2)


def labels_for(n, steps, changes):
    lab = np.empty(n, dtype=np.int64)
    start = 0
    for k, b in enumerate(list(changes) + [n - 1]):
        lab[start:b + 1] = steps[k]
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
    for key, at, start, n, dd, judges, steps, changes, published in DIVES:
        sc = score(dd, judges)
        tr = np.array(changes if published is None else published, dtype=np.int64)
        lab = labels_for(n, steps, changes)
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
