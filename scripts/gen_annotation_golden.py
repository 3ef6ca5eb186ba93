#!/usr/bin/python3
"""Writes tests/data/annotations/expected.txt: values of the AQA annotation files read with
Python's own pickle module (independently of aqa's C pickle reader), for tests/test_annotations.c.

Reads ../shared/data/{MTL-AQA,JIGSAWS,Fis-V} (when present) and the FineDiving fixture in
tests/data/finediving (scripts/make_finediving_fixture.py).  Line formats (space-separated):

  count   DATASET N                     number of samples
  split   DATASET NAME N FIRST LAST     split size and its first / last sample key
  distinct DATASET dive_number N        distinct dive numbers
  sum     DATASET score S               sum of all sample scores (%.17g)
  sample  DATASET KEY VIDEO INSTANCE START END SCORE DIFFICULTY DIVE NJ J... NS S... NL LSUM NT T...
          (DIVE is '-' when absent; NJ judges, NS sub-scores, NL frame labels with sum LSUM, NT
          transition frames (FineDiving: where the frame labels change); START/END/INSTANCE are -1
          when unknown)

Keys follow aqa's manifest: MTL-AQA "%02d_%d", FineDiving "video/instance", JIGSAWS trial name,
Fis-V id.  Usage: /usr/bin/python3 scripts/gen_annotation_golden.py [SHARED_DATA_DIR]
"""
import os
import pickle
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, '..', 'shared', 'data')
OUT = os.path.join(ROOT, 'tests', 'data', 'annotations', 'expected.txt')


def g(x):
    return '%.17g' % float(x)


def load(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


lines = ['# written by scripts/gen_annotation_golden.py with python %s, numpy %s'
         % (sys.version.split()[0], np.__version__)]


def sample(ds, key, video, inst, start, end, score, dd, dive, judges, subs, labels, trans):
    f = ['sample', ds, key, video, str(inst), str(start), str(end), g(score), g(dd), dive or '-',
         str(len(judges))] + [g(j) for j in judges] + [str(len(subs))] + [g(s) for s in subs]
    f += [str(len(labels)), str(int(np.sum(labels))) if len(labels) else '0', str(len(trans))]
    f += [str(int(t)) for t in trans]
    lines.append(' '.join(f))


def mtl():
    d = os.path.join(SHARED, 'MTL-AQA')
    p = os.path.join(d, 'final_annotations_dict_with_dive_number.pkl')
    if not os.path.exists(p):
        return
    ann = load(p)
    key = lambda k: '%02d_%d' % k
    lines.append('count MTL-AQA %d' % len(ann))
    for name, fn in (('train', 'train_split_0.pkl'), ('test', 'test_split_0.pkl')):
        s = load(os.path.join(d, fn))
        lines.append('split MTL-AQA %s %d %s %s' % (name, len(s), key(s[0]), key(s[-1])))
    lines.append('distinct MTL-AQA dive_number %d' % len({v['dive_number'] for v in ann.values()}))
    lines.append('sum MTL-AQA score %s' % g(sum(v['final_score'] for v in ann.values())))
    keys = list(ann)
    for k in [keys[0], keys[1], keys[700], keys[-1], (4, 49), (26, 4)]:
        v = ann[k]
        sample('MTL-AQA', key(k), '%02d' % k[0], k[1], v['start_frame'], v['end_frame'], v['final_score'],
               v['difficulty'], v['dive_number'], list(v['judge_scores']), [], [], [])


def jigsaws():
    d = os.path.join(SHARED, 'JIGSAWS')
    if not os.path.exists(os.path.join(d, 'label.pkl')):
        return
    lab = load(os.path.join(d, 'label.pkl'))
    spl = load(os.path.join(d, 'splits.pkl'))
    lines.append('count JIGSAWS %d' % len(lab))
    for task, folds in spl.items():
        for k, fold in enumerate(folds):
            lines.append('split JIGSAWS %s/%d/test %d %s %s' % (task, k, len(fold), fold[0], fold[-1]))
            train = [t for j, f in enumerate(folds) if j != k for t in f]
            lines.append('split JIGSAWS %s/%d/train %d %s %s' % (task, k, len(train), train[0], train[-1]))
    lines.append('sum JIGSAWS score %s' % g(sum(sum(v) for v in lab.values())))
    keys = list(lab)
    for k in [keys[0], keys[50], keys[-1], 'Suturing_B001']:
        sample('JIGSAWS', k, k, -1, -1, -1, sum(lab[k]), 0, None, [], lab[k], [], [])


def fisv():
    d = os.path.join(SHARED, 'Fis-V')
    if not os.path.exists(os.path.join(d, 'train_dataset.txt')):
        return
    allrows = []
    for name in ('train', 'test'):
        rows = [l.split() for l in open(os.path.join(d, '%s_dataset.txt' % name)) if l.strip()]
        lines.append('split Fis-V %s %d %s %s' % (name, len(rows), rows[0][0], rows[-1][0]))
        allrows += rows
    lines.append('count Fis-V %d' % len(allrows))
    tot = lambda r: float(r[1]) + float(r[2]) - float(r[3])
    lines.append('sum Fis-V score %s' % g(sum(tot(r) for r in allrows)))
    for r in [allrows[0], allrows[123], allrows[-1]]:
        sample('Fis-V', r[0], r[0], -1, -1, -1, tot(r), 0, None, [], [float(x) for x in r[1:4]], [], [])


def finediving():
    d = os.path.join(ROOT, 'tests', 'data', 'finediving')
    fine = load(os.path.join(d, 'FineDiving_fine-grained_annotation.pkl'))
    coarse = load(os.path.join(d, 'FineDiving_coarse_annotation.pkl'))
    key = lambda k: '%s/%d' % k
    lines.append('count FineDiving %d' % len(fine))
    for name in ('train', 'test'):
        s = load(os.path.join(d, '%s_split.pkl' % name))
        lines.append('split FineDiving %s %d %s %s' % (name, len(s), key(s[0]), key(s[-1])))
    lines.append('sum FineDiving score %s' % g(sum(v['dive_score'] for v in fine.values())))
    for k, v in fine.items():
        c = coarse[k]
        # the transitions as aqa gives them: where frames_labels changes (the release's
        # steps_transit_frames where they agree with that, FORMATS.md)
        lab = np.asarray(v['frames_labels'])
        changes = [int(i) for i in np.nonzero(lab[1:] != lab[:-1])[0]]
        sample('FineDiving', key(k), k[0], k[1], c['start_frame'], c['end_frame'], v['dive_score'],
               v['difficulty'], v['action_type'], c['judge_scores'], [], v['frames_labels'], changes)


def pickle_cases():
    """Small pickles of every supported type, one file per protocol, for tests/test_pickle.c (which
    spells out the same values), plus pickles the reader must refuse."""
    import collections
    import datetime
    shared = [1, 'two']
    case = {
        'none': None, 'true': True, 'false': False,
        'int_small': 7, 'int_neg': -300, 'int_big': 2**40 + 3, 'int_min': -2**63, 'int_max': 2**63 - 1,
        'float': 3.25, 'float_neg': -1e-300,
        'str': 'h\u00e9llo \u2603\\n\n"\'', 'bytes': b'\x00\x01\xff', 'empty_bytes': b'',
        'list': [1, 2.5, 'x'], 'tuple': (1, ('a', 2)), 'empty_tuple': (), 'empty_list': [],
        ('video', 8): 'str-int key', (1, 2): 'int-int key', 5: 'int key',
        'f8': np.array([1.5, -2.0]), 'i8_2d': np.arange(6, dtype=np.int64).reshape(2, 3) - 2,
        'f4_fortran': np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        'i4_be': np.array([1, -2, 3], dtype='>i4'), 'u1': np.array([0, 255], dtype=np.uint8),
        'b1': np.array([True, False]), 'empty_f8': np.zeros((0,)),
        'scalar_f8': np.float64(2.5), 'scalar_i8': np.int64(-9),
        'shared': shared, 'shared_again': shared,
        'od': collections.OrderedDict([('a', 1), ('b', 2)]), 'nested': {'deep': [[[]]]},
    }
    d = os.path.dirname(OUT)
    for proto in range(0, 6):
        with open(os.path.join(d, 'case_p%d.pkl' % proto), 'wb') as f:
            pickle.dump(case, f, protocol=proto)
    with open(os.path.join(d, 'bad_global.pkl'), 'wb') as f:
        pickle.dump({'when': datetime.date(2020, 1, 2)}, f, protocol=2)
    with open(os.path.join(d, 'bad_set.pkl'), 'wb') as f:
        pickle.dump([1, {3, 4}], f, protocol=4)
    with open(os.path.join(d, 'bad_object_array.pkl'), 'wb') as f:
        pickle.dump(np.array([None, 1], dtype=object), f, protocol=2)
    with open(os.path.join(d, 'bad_bigint.pkl'), 'wb') as f:
        pickle.dump([2**64], f, protocol=2)


def malformed_records():
    """One malformed record per pickled loader, for the error tests: tests/data/annotations/bad_mtl
    (dive (2, 5)'s 'judge_scores' is a str) and bad_jigsaws (trial 'Suturing_B002' has 5 GRS
    items); each with the other files the loader reads."""
    d = os.path.join(os.path.dirname(OUT), 'bad_mtl')
    os.makedirs(d, exist_ok=True)
    rec = lambda s: {'start_frame': 100, 'end_frame': 210, 'difficulty': 3.0, 'final_score': s,
                     'judge_scores': np.array([7.0, 7.5, 7.0, 6.5, 7.0, 7.5, 7.0]), 'dive_number': '207C'}
    ann = {(1, 4): rec(63.0), (2, 5): dict(rec(60.0), judge_scores='seven'), (3, 1): rec(63.0)}
    for name, obj in (('final_annotations_dict_with_dive_number.pkl', ann), ('train_split_0.pkl', [(1, 4), (2, 5)]),
                      ('test_split_0.pkl', [(3, 1)])):
        with open(os.path.join(d, name), 'wb') as f:
            pickle.dump(obj, f, protocol=2)
    d = os.path.join(os.path.dirname(OUT), 'bad_jigsaws')
    os.makedirs(d, exist_ok=True)
    labels = {'Suturing_B001': [3, 3, 2, 4, 3, 3], 'Suturing_B002': [3, 3, 2, 4, 3]}
    with open(os.path.join(d, 'label.pkl'), 'wb') as f:
        pickle.dump(labels, f, protocol=2)
    with open(os.path.join(d, 'splits.pkl'), 'wb') as f:
        pickle.dump({'Suturing': [['Suturing_B001'], ['Suturing_B002'], [], []]}, f, protocol=2)


pickle_cases()
malformed_records()
mtl()
jigsaws()
fisv()
finediving()
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, 'w') as f:
    f.write('\n'.join(lines) + '\n')
print('wrote %s (%d lines)' % (OUT, len(lines)))
