#!/usr/bin/python3
"""Checks a synthetic diving dataset written by examples/make_synthetic with Python's own pickle
and numpy (an independent reader of the files aqa's C pickle writer produced), and prints a summary.

Checks: the six FineDiving annotation files load with pickle.load; keys are (str, int) tuples;
frames_labels / steps_transit_frames are numpy int64 1-D arrays; every label change happens right
after a listed transition and nowhere else; coarse, fine-grained and aqa files agree; the score is
difficulty x the sum of the middle three of seven judges; splits are disjoint and cover every dive;
frame folders hold exactly start_frame..end_frame; frames decode at the configured size (PIL, on a
sample).  Then it reports the set (dive numbers, scores, frame counts, stage lengths) and how the
hidden execution factor (synthetic_dives.csv) relates to the judges.

Usage: /usr/bin/python3 scripts/check_synthetic.py DIR [--all-frames]
Exit status 1 when a check fails.
"""
import csv
import os
import pickle
import sys
from collections import Counter

import numpy as np

FILES = ['FineDiving_coarse_annotation.pkl', 'FineDiving_fine-grained_annotation.pkl',
         'fine-grained_annotation_aqa.pkl', 'Sub_action_Types_Table.pkl', 'train_split.pkl',
         'test_split.pkl']

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        if len(failures) <= 20:
            print('FAIL:', what)


def ranks(x):
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind='mergesort')
    r = np.empty(len(x))
    i = 0
    while i < len(x):  # average ranks for ties
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(a, b):
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    root = sys.argv[1]
    all_frames = '--all-frames' in sys.argv
    data = {}
    for name in FILES:
        with open(os.path.join(root, name), 'rb') as f:
            raw = f.read()
        check(raw[:2] == b'\x80\x02', '%s: not pickle protocol 2' % name)
        data[name] = pickle.loads(raw)
    coarse, fine, aqa, table, train, test = (data[n] for n in FILES)
    cfg = {}
    with open(os.path.join(root, 'synthetic_config.txt')) as f:
        for line in f:
            if '=' in line and not line.startswith('#'):
                k, v = line.split('=', 1)
                cfg[k.strip()] = v.strip()
    hidden = {}
    with open(os.path.join(root, 'synthetic_dives.csv')) as f:
        for row in csv.DictReader(f):
            hidden[(row['video'], int(row['instance']))] = row

    check(isinstance(table, dict) and len(table) == 42, 'Sub_action_Types_Table: 42 ids')
    check(table.get(36) == 'Entry' and table.get(4) == 'Inward', 'Sub_action_Types_Table names')
    check(list(coarse) == list(fine) == list(aqa), 'the three annotation dicts list the same keys in order')
    keys = list(fine)
    stage_len = []
    for k in keys:
        check(isinstance(k, tuple) and len(k) == 2 and type(k[0]) is str and type(k[1]) is int,
              'key %r is a (str, int) tuple' % (k,))
        c, g, a = coarse[k], fine[k], aqa[k]
        check(set(c) == {'action_type', 'start_frame', 'end_frame', 'dive_score', 'difficulty', 'judge_scores'},
              '%r coarse fields' % (k,))
        check(set(g) == {'action_type', 'dive_score', 'difficulty', 'steps_transit_frames', 'frames_labels',
                         'sub-action_types'}, '%r fine-grained fields' % (k,))
        lab, tr = g['frames_labels'], g['steps_transit_frames']
        for arr, nm in ((lab, 'frames_labels'), (tr, 'steps_transit_frames')):
            check(isinstance(arr, np.ndarray) and arr.dtype == np.int64 and arr.ndim == 1,
                  '%r %s is a 1-D int64 array (%s)' % (k, nm, getattr(arr, 'dtype', type(arr))))
        n = c['end_frame'] - c['start_frame'] + 1
        check(len(lab) == n, '%r: %d labels for %d frames' % (k, len(lab), n))
        changes = [i for i in range(len(lab) - 1) if lab[i] != lab[i + 1]]
        check(changes == tr.tolist(), '%r: label changes %s vs steps_transit_frames %s' % (k, changes, tr.tolist()))
        check(lab[-1] == 36, '%r ends in Entry' % (k,))
        steps = [int(lab[0])] + [int(lab[i + 1]) for i in changes]
        check(g['sub-action_types'] == {s: table[s] for s in steps}, '%r sub-action_types' % (k,))
        check(type(a) is list and len(a) == 5 and a[0] == g['action_type'] and a[1] == g['dive_score']
              and a[2] == g['difficulty'] and np.array_equal(a[3], tr) and np.array_equal(a[4], lab)
              and a[3].dtype == np.int64 and a[4].dtype == np.int64, '%r aqa entry agrees' % (k,))
        check(c['action_type'] == g['action_type'] and c['dive_score'] == g['dive_score']
              and c['difficulty'] == g['difficulty'], '%r coarse agrees with fine-grained' % (k,))
        j = sorted(c['judge_scores'])
        check(len(j) == 7 and all(0 <= x <= 10 and x * 2 == int(x * 2) for x in j), '%r judges' % (k,))
        check(abs(c['dive_score'] - round(c['difficulty'] * sum(j[2:5]), 2)) < 1e-9,
              '%r score %r != DD x middle three' % (k, c['dive_score']))
        check(0 <= c['dive_score'] <= 30 * c['difficulty'], '%r score range' % (k,))
        stage_len.append((tr[0] + 1, tr[-1] - tr[0], n - 1 - tr[-1], n))
        h = hidden.get(k)
        check(h is not None and h['dive_number'] == g['action_type'] and float(h['score']) == round(g['dive_score'], 2)
              and int(h['boundary1']) == tr[0] and int(h['boundary2']) == tr[-1], '%r synthetic_dives.csv row' % (k,))
        # frames on disk
        ext = 'png' if cfg.get('format') == 'png' else 'jpg'
        d = os.path.join(root, k[0], str(k[1]))
        names = sorted(os.listdir(d))
        want = ['%05d.%s' % (i, ext) for i in range(c['start_frame'], c['end_frame'] + 1)]
        check(names == want, '%s: frames %s..%s expected, found %d files' % (d, want[0], want[-1], len(names)))
    check(len(set(train) & set(test)) == 0, 'splits are disjoint')
    check(sorted(train + test) == sorted(keys), 'splits cover every dive')

    # decode a sample of frames
    try:
        from PIL import Image
        sample = keys if all_frames else keys[:: max(1, len(keys) // 10)]
        for k in sample:
            d = os.path.join(root, k[0], str(k[1]))
            for nm in sorted(os.listdir(d))[:: 1 if all_frames else 7]:
                im = Image.open(os.path.join(d, nm))
                check(im.size == (int(cfg['width']), int(cfg['height'])) and im.mode == 'RGB',
                      '%s/%s: %s %s' % (d, nm, im.size, im.mode))
    except ImportError:
        print('(PIL not available: frames not decoded)')

    # summary
    sc = np.array([fine[k]['dive_score'] for k in keys])
    dd = np.array([fine[k]['difficulty'] for k in keys])
    nf = np.array([s[3] for s in stage_len])
    st = np.array([s[:3] for s in stage_len], dtype=float) / nf[:, None]
    print('dataset %s: %d dives (%d train, %d test), %s frames %sx%s, numpy %s' % (
        root, len(keys), len(train), len(test), cfg.get('format'), cfg.get('width'), cfg.get('height'), np.__version__))
    print('dive numbers:', ', '.join('%s x%d' % kv for kv in sorted(Counter(fine[k]['action_type'] for k in keys).items())))
    print('difficulty %.1f..%.1f; score %.2f..%.2f (mean %.2f, std %.2f)' % (dd.min(), dd.max(), sc.min(), sc.max(),
                                                                         sc.mean(), sc.std()))
    print('frames per dive %d..%d (mean %.1f, %d dives shorter than 96)' % (nf.min(), nf.max(), nf.mean(),
                                                                           int((nf < 96).sum())))
    print('stage shares: take-off %.2f, flight %.2f, entry %.2f; steps per dive: %s' % (
        st[:, 0].mean(), st[:, 1].mean(), st[:, 2].mean(),
        dict(Counter(len(fine[k]['steps_transit_frames']) + 1 for k in keys))))
    ex = np.array([float(hidden[k]['execution']) for k in keys])
    js = np.array([sum(sorted(coarse[k]['judge_scores'])[2:5]) for k in keys])
    print('Spearman: execution vs judges (score / DD) %.3f; execution vs score %.3f; difficulty vs score %.3f' % (
        spearman(ex, js), spearman(ex, sc), spearman(dd, sc)))
    for f in ('jump_height', 'angle_jitter', 'entry_tilt', 'splash'):
        v = np.array([float(hidden[k][f]) for k in keys])
        if f == 'entry_tilt':
            v = np.abs(v)
        print('  Spearman(%s%s, judges) %.3f' % ('|%s|' % f if f == 'entry_tilt' else f, '', spearman(v, js)))
    if failures:
        print('%d check(s) FAILED' % len(failures))
        sys.exit(1)
    print('all checks passed')


if __name__ == '__main__':
    main()
