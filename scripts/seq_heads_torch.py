"""PyTorch reference of aqa's clip-sequence heads (models/heads/{tpt,hgcn,gdlt,mslstm,mixer}.c):
TPT (Bai et al., ECCV 2022), HGCN (Zhou et al., TCSVT 2023), GDLT (Xu et al., CVPR 2022),
MS-LSTM (Xu et al., TCSVT 2019) and Skating-Mixer's scoring head (Xia et al., AAAI 2023), written
here from the papers' public code's architecture, with the same state_dict names as the C heads
(which are the original code's).  Used by scripts/gen_golden_seq_heads.py; importable alone.

Each head takes `frames` [B, T, C_f] and, with MVLA (cfg["mvla"]), stage features [B, S, C], the
video feature [B, C] and boundaries [B, S - 1]: every step gets stage_proj(Z_sta) of its stage and
video_proj(Z_vid) added (the C heads' seq.c).  forward(...) returns (pred [B], loss or None)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- shared: MVLA's Z on the sequence, CoRe's groups ------------------------------------------------
def add_z(head, cfg):
    if cfg.get("mvla"):
        head.stage_proj = nn.Linear(cfg["feat_dim"], cfg["frame_dim"])
        head.video_proj = nn.Linear(cfg["feat_dim"], cfg["frame_dim"])


def seq_input(head, frames, stages=None, video=None, boundaries=None):
    if not hasattr(head, "stage_proj"):
        return frames
    B, T, _ = frames.shape
    member = torch.zeros(B, T, stages.shape[1], dtype=frames.dtype)
    for b in range(B):
        edges = [0] + [int(v) for v in boundaries[b]] + [T]
        for s in range(len(edges) - 1):
            member[b, edges[s]:edges[s + 1], s] = 1
    return frames + member @ head.stage_proj(stages) + head.video_proj(video).unsqueeze(1)


def groups_from_deltas(deltas, leaves):
    """CoRe's Group_helper (symmetric, Min 0, Max = the largest |delta|) as [leaves, 2]."""
    a = sorted(abs(float(d)) for d in deltas)
    n, half = len(a), leaves // 2
    g = [[0.0, 0.0] for _ in range(leaves)]
    for i in range(half):
        left = 0.0 if i == 0 else a[int(i / half * (n - 1))]
        right = a[n - 1] if i == half - 1 else a[int((i + 1) / half * (n - 1))]
        g[half + i] = [left, right]
        g[half - 1 - i] = [-right, -left]
    return torch.tensor(g, dtype=torch.float64)


def leaf_of(g, d):
    for i in range(g.shape[0]):
        l, r = float(g[i, 0]), float(g[i, 1])
        if (d >= 0 and l <= d < r) or (d < 0 and l < d <= r):
            break
    else:
        i = g.shape[0] - 1 if d >= 0 else 0
    l, r = float(g[i, 0]), float(g[i, 1])
    return i, (d - l if r == l else (d - l) / (r - l))


def tree_loss(logp, delta, g, diff):
    """Both directions: rows [0, B) for diff, [B, 2B) for -diff; NLL + MSE within each leaf."""
    B = len(diff)
    loss = 0
    for direction in range(2):
        lp, dl = logp[direction * B:(direction + 1) * B], delta[direction * B:(direction + 1) * B]
        labels, rel = zip(*[leaf_of(g, (1 if direction == 0 else -1) * d) for d in diff])
        loss = loss + F.nll_loss(lp, torch.tensor(labels))
        for k in set(labels):
            rows = [i for i in range(B) if labels[i] == k]
            loss = loss + F.mse_loss(dl[rows, k], torch.tensor([rel[i] for i in rows], dtype=dl.dtype))
    return loss


def tree_predict(logp, delta, g):
    k = logp.argmax(-1)
    out = []
    for i in range(logp.shape[0]):
        l, r = g[k[i], 0], g[k[i], 1]
        v = delta[i, k[i]].double()
        out.append(l + v if r == l else l + (r - l) * v)
    return torch.stack(out)


# ---- TPT ----------------------------------------------------------------------------------------
class TPTLayer(nn.Module):
    def __init__(self, cfg, first):
        super().__init__()
        d, ffn = cfg["tpt_dim"], cfg["tpt_ffn"]
        self.temp = nn.Parameter(torch.ones([]) * cfg["tpt_temp"])
        self.key_embed = nn.Linear(cfg["frame_dim"], d)
        self.value_embed = nn.Linear(cfg["frame_dim"], d)
        self.query_embed = nn.Linear(d, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.linear1 = nn.Linear(d, ffn)
        self.linear2 = nn.Linear(ffn, d)
        self.first = first
        if first:
            self.self_attn = nn.MultiheadAttention(d, cfg["tpt_heads"], batch_first=True)
            self.norm3 = nn.LayerNorm(d)

    def forward(self, x, tgt, pos):
        key, value = self.key_embed(x), self.value_embed(x)
        query = self.query_embed(tgt + pos)
        att = F.softmax(key @ query.transpose(1, 2) / key.shape[-1] / self.temp, dim=1)
        tgt = self.norm1(tgt + att.transpose(1, 2) @ value)
        tgt = self.norm2(tgt + self.linear2(F.relu(self.linear1(tgt))))
        if self.first:
            qk = tgt + pos
            tgt = self.norm3(tgt + self.self_attn(qk, qk, tgt, need_weights=False)[0])
        return tgt, att


class TPTDecoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.query_embed = nn.Embedding(cfg["tpt_queries"], cfg["tpt_dim"])
        self.layers = nn.ModuleList([TPTLayer(cfg, True), TPTLayer(cfg, False)])

    def forward(self, x):
        pos = self.query_embed.weight.unsqueeze(0).expand(x.shape[0], -1, -1)
        tgt = torch.zeros_like(pos)
        tgt, a1 = self.layers[0](x, tgt, pos)
        tgt, a2 = self.layers[1](x, tgt, pos)
        return tgt, [a1, a2]


class PairEncoder(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Dropout(0.0), nn.Linear(d, d))

    def forward(self, a, b):
        return self.mlp(torch.cat([a, b], -1)).mean(1)


class TPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, hid, leaves = cfg["tpt_dim"], cfg["tpt_hidden"], 2 ** (cfg["tpt_depth"] - 1)
        self.action_decoder = TPTDecoder(cfg)
        self.pair_encoder = PairEncoder(d)
        self.cls = nn.Sequential(nn.Linear(d, hid), nn.ReLU(), nn.Linear(hid, leaves))
        self.reg = nn.Sequential(nn.Linear(d, hid), nn.ReLU(), nn.Linear(hid, leaves), nn.Sigmoid())
        self.register_buffer("groups", torch.zeros(leaves, 2, dtype=torch.float64))
        add_z(self, cfg)

    def heads(self, r):
        return F.log_softmax(self.cls(r), -1), self.reg(r)

    def part_losses(self, att):
        T = att.shape[1]
        steps = torch.arange(1, T + 1, dtype=att.dtype).view(1, T, 1)
        mean = (att * steps).sum(1)
        spread = ((steps - mean.unsqueeze(1)).abs() * att).sum(1)
        m = self.cfg["tpt_margin"]
        hinge = nn.MarginRankingLoss(margin=m)
        one = torch.ones(att.shape[0], dtype=att.dtype)
        loss = 0
        for k in range(mean.shape[1] - 1):
            loss = loss + hinge(mean[:, k + 1], mean[:, k], one)
        loss = loss + hinge(mean[:, 0], one, one) + hinge(one * T, mean[:, -1], one)
        return loss + self.cfg["tpt_var_weight"] * spread.mean()

    def forward(self, q, e, exemplar_score, score=None):
        pq, aq = self.action_decoder(seq_input(self, **q))
        pe, ae = self.action_decoder(seq_input(self, **e))
        logp, delta = self.heads(self.pair_encoder(pe, pq))
        pred = tree_predict(logp, delta, self.groups) + exemplar_score.double()
        if score is None:
            return pred, None
        lq, dq = self.heads(self.pair_encoder(pq, pe))
        diff = [float(a - b) for a, b in zip(exemplar_score, score)]
        loss = tree_loss(torch.cat([lq, logp]), torch.cat([dq, delta]), self.groups, diff)
        for k in range(2):
            loss = loss + self.part_losses(torch.cat([aq[k], ae[k]]))
        return pred, loss


# ---- HGCN ---------------------------------------------------------------------------------------
def band(n, k):
    i = torch.arange(n)
    return ((i.view(-1, 1) - i.view(1, -1)).abs() < k).double()


def conv1x1(i, o, g=1, bias=True):
    return nn.Conv1d(i, o, 1, groups=g, bias=bias)


class AttAdj(nn.Module):
    def __init__(self, i, o, n, g):
        super().__init__()
        self.conv_q = conv1x1(i, o, g, False)
        self.conv_k = conv1x1(i, o, g, False)
        self.C = nn.Parameter(torch.eye(n))
        self.alpha = nn.Parameter(torch.eye(1))
        self.o = o

    def forward(self, x):  # channel-major [B, C, N]
        b = torch.einsum("bcn,bcm->bnm", self.conv_q(x), self.conv_k(x)) / math.sqrt(self.o)
        return self.alpha * b + self.C


class GCNLevel(nn.Module):
    def __init__(self, i, o, n, g, f, adj_name, agg_name, scenes=0):
        super().__init__()
        setattr(self, adj_name, AttAdj(i, i // f, n, g))
        setattr(self, agg_name, nn.Sequential(conv1x1(i, o, g), nn.ReLU()))
        self.adj_name, self.agg_name = adj_name, agg_name
        if scenes:
            self.S = nn.Parameter(torch.ones(scenes, n))
            self.alpha = nn.Parameter(torch.eye(1))

    def forward(self, x, base, multiply=False):
        b = getattr(self, self.adj_name)(x)
        a = F.softmax(base * b if multiply else base + b, -1)
        return getattr(self, self.agg_name)(torch.einsum("bcn,bnm->bcm", x, a))


def mlp(i, o, g):
    m = nn.Module()
    m.mlp = nn.Sequential(conv1x1(i, o, g), nn.ReLU())
    return m


class HGCN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        n, g, f, S, d = cfg["len"], cfg["hgcn_groups"], cfg["hgcn_factor"], cfg["hgcn_scenes"], cfg["hgcn_dims"]
        c = cfg["frame_dim"]
        self.shot_gen = nn.Module()
        self.shot_gen.state_gen = nn.Sequential(conv1x1(c, c // f, g), nn.ReLU())
        self.shot_gen.info_trans = nn.Sequential(conv1x1(c, d[0], g), nn.ReLU())
        self.scene_gen = nn.Module()
        self.scene_gen.shot_gcn = GCNLevel(d[0], d[1], n, g, f, "adp_adj", "shot_agg")
        self.scene_gen.trans_gcn = GCNLevel(d[0], S, n, 1, f, "adp_adj", "shot_agg", scenes=S)
        self.mot_agg = mlp(d[1], d[2], g)
        self.fc2_mean = conv1x1(d[2], 1)
        self.fc2_logvar = conv1x1(d[2], 1)
        add_z(self, cfg)

    def forward(self, q, score=None, difficulty=None):
        x = seq_input(self, **q).transpose(1, 2)  # [B, C, N]
        n, S = x.shape[2], self.cfg["hgcn_scenes"]
        st = self.shot_gen.state_gen(x)
        a = (torch.tanh(st.unsqueeze(-1) - st.unsqueeze(-2)).mean(1) + torch.eye(n, dtype=x.dtype)) * band(n, 2).to(x.dtype)
        shot = self.shot_gen.info_trans(torch.einsum("bcn,bnm->bcm", x, a))
        bd = band(n, self.cfg["hgcn_k"]).to(x.dtype)
        h = self.scene_gen.shot_gcn(shot, bd)
        tr = self.scene_gen.trans_gcn
        T = tr.S + tr.alpha * tr(shot, bd)
        scene = torch.einsum("bcn,bmn->bcm", h, T)
        v = self.mot_agg.mlp(scene)
        mu = self.fc2_mean(v)
        y = mu.mean(-1).squeeze(1) * S
        pred = y * difficulty if difficulty is not None else y
        loss = None if score is None else ((pred - score) ** 2).sum()
        return pred, loss


# ---- GDLT ---------------------------------------------------------------------------------------
class GDLT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        c, d, n = cfg["frame_dim"], cfg["gdlt_dim"], cfg["gdlt_queries"]
        self.in_proj = nn.Sequential(conv1x1(c, c // 2), nn.BatchNorm1d(c // 2), nn.ReLU(), conv1x1(c // 2, d),
                                     nn.BatchNorm1d(d))
        self.transformer = nn.Module()
        self.transformer.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, cfg["gdlt_heads"], 3 * d, 0.0, batch_first=True), cfg["gdlt_encoder"],
            norm=nn.LayerNorm(d), enable_nested_tensor=False)
        self.transformer.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, cfg["gdlt_heads"], 3 * d, 0.0, batch_first=True), cfg["gdlt_decoder"],
            norm=nn.LayerNorm(d))
        self.prototype = nn.Embedding(n, d)
        self.regressor = nn.Linear(d, n)
        add_z(self, cfg)

    def forward(self, q, score=None):
        cfg = self.cfg
        x = self.in_proj(seq_input(self, **q).transpose(1, 2)).transpose(1, 2)
        b, n = x.shape[0], cfg["gdlt_queries"]
        q1 = self.transformer.decoder(self.prototype.weight.unsqueeze(0).repeat(b, 1, 1), self.transformer.encoder(x))
        s = torch.diagonal(self.regressor(q1), dim1=-2, dim2=-1)
        w = torch.sigmoid(s)
        w = w / w.sum(1, keepdim=True)
        norm = (torch.linspace(0, 1, n, dtype=w.dtype).unsqueeze(0) * w).sum(1)
        lo, rng = cfg["score_min"], cfg["score_max"] - cfg["score_min"]
        pred = norm * rng + lo
        if score is None:
            return pred, None
        loss = F.mse_loss(norm, (score - lo) / rng)
        e = F.normalize(q1.reshape(b * n, -1), dim=-1)
        dist = 1 - e @ e.t()
        lab = torch.arange(n).repeat(b)
        same = lab.view(1, -1) == lab.view(-1, 1)
        pos = same & ~torch.eye(b * n, dtype=torch.bool)
        d_ap = (dist * pos).max(1, keepdim=True)[0]
        d_an = (dist + dist.max(1, keepdim=True)[0] * same).min(1, keepdim=True)[0]
        tri = F.relu(d_ap - d_an + cfg["gdlt_margin"]).mean()
        return pred, loss + cfg["gdlt_alpha"] * tri


# ---- MS-LSTM ------------------------------------------------------------------------------------
class SkipLSTM(nn.Module):
    """Campos et al.'s skip LSTM cell over [B, L, in] from zero states; state_dict names as
    MS_LSTM's CSkipLSTMCell (own weight_uh, bias_uh, then ParameterLists)."""

    def __init__(self, i, h):
        super().__init__()
        self.weight_uh = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, h)))
        self.bias_uh = nn.Parameter(torch.ones(1))
        self.weight_ih = nn.ParameterList([nn.Parameter(nn.init.xavier_uniform_(torch.empty(4 * h, i)))])
        self.weight_hh = nn.ParameterList([nn.Parameter(nn.init.xavier_uniform_(torch.empty(4 * h, h)))])
        self.bias_ih = nn.ParameterList([nn.Parameter(torch.zeros(4 * h))])
        self.bias_hh = nn.ParameterList([nn.Parameter(torch.zeros(4 * h))])
        self.h = h

    def forward(self, x):
        B = x.shape[0]
        h = torch.zeros(B, self.h, dtype=x.dtype)
        c = torch.zeros_like(h)
        u = torch.ones(B, 1, dtype=x.dtype)
        cum = torch.zeros(B, 1, dtype=x.dtype)
        for t in range(x.shape[1]):
            g = F.linear(x[:, t], self.weight_ih[0], self.bias_ih[0]) + F.linear(h, self.weight_hh[0], self.bias_hh[0])
            i, f, gg, o = g.chunk(4, 1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            u_new = torch.sigmoid(F.linear(c_new, self.weight_uh, self.bias_uh))
            cum = cum + torch.min(u, 1.0 - cum)
            gate = cum.round().detach() + cum - cum.detach()  # straight-through rounding
            c = gate * c_new + (1 - gate) * c
            h = gate * h_new + (1 - gate) * h
            u = gate * u_new + (1 - gate) * u
            cum = (1 - gate) * cum
        return h


class ConvLSTM(nn.Module):
    def __init__(self, i, filters, k, s, h):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(i, filters, k, s), nn.ReLU(), nn.BatchNorm1d(filters))
        self.lstm = SkipLSTM(filters, h)

    def forward(self, x):  # [B, C, T]
        return self.lstm(self.conv(x).transpose(1, 2))


class MSLSTM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        cw, h, f, mg = cfg["mslstm_conv"], cfg["mslstm_hidden"], cfg["mslstm_filters"], cfg["mslstm_merge"]
        self.conv = nn.Sequential(conv1x1(cfg["frame_dim"], cw), nn.ReLU(), nn.BatchNorm1d(cw))
        self.scale1 = ConvLSTM(cw, f, 2, 1, h)
        self.scale2 = ConvLSTM(cw, f, 4, 2, h)
        self.scale3 = ConvLSTM(cw, f, 8, 4, h)
        self.attn = nn.Module()
        self.attn.linear_1 = nn.Linear(cw, cfg["mslstm_attn_hidden"], bias=False)
        self.attn.linear_2 = nn.Linear(cfg["mslstm_attn_hidden"], cfg["mslstm_descriptors"], bias=False)
        self.attn.bn = nn.BatchNorm1d(cw)
        self.lstm = nn.LSTM(cw, h, batch_first=True)
        self.linear_skip1 = nn.Linear(h, mg)
        self.linear_skip2 = nn.Linear(h, mg)
        self.linear_skip3 = nn.Linear(h, mg)
        self.linear_attn = nn.Linear(h, mg)
        self.linear_merge = nn.Linear(4 * mg, mg)
        self.cls = nn.Linear(mg, 1)
        add_z(self, cfg)

    def forward(self, q, score=None):
        xc = self.conv(seq_input(self, **q).transpose(1, 2))  # [B, cw, T]
        xt = xc.transpose(1, 2)
        A = F.softmax(self.attn.linear_2(torch.tanh(self.attn.linear_1(xt))), dim=1)
        M = self.attn.bn(xc @ A).transpose(1, 2)
        eye = torch.eye(A.shape[2], dtype=A.dtype)
        penal = torch.norm(A.transpose(1, 2) @ A - eye, 2) ** 2 / xc.shape[0]
        ya = self.lstm(M)[0][:, -1]
        parts = [F.relu(self.linear_skip1(self.scale1(xc))), F.relu(self.linear_skip2(self.scale2(xc))),
                 F.relu(self.linear_skip3(self.scale3(xc))), F.relu(self.linear_attn(ya))]
        y = self.cls(F.relu(self.linear_merge(torch.cat(parts, 1)))).squeeze(1)
        return y, None if score is None else F.mse_loss(y, score) + penal


# ---- Skating-Mixer's scoring head (video only) --------------------------------------------------
class PreNorm(nn.Module):
    def __init__(self, d, fn):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        return self.fn(self.norm(x)) + x


def feed_forward(d, e, dense):
    return nn.Sequential(dense(d, d * e), nn.GELU(), nn.Dropout(0.0), dense(d * e, d), nn.Dropout(0.0))


class Mixer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, n, e = cfg["mixer_dim"], cfg["mixer_tokens"] + 2, cfg["mixer_expansion"]
        self.n = cfg["mixer_tokens"]
        self.hidden_state = nn.Parameter(torch.randn(1, d))
        self.cls_token = nn.Parameter(torch.randn(1, d))
        self.linear1 = nn.Linear(cfg["frame_dim"], d)
        self.linear_forward = nn.Sequential(*[nn.Sequential(
            PreNorm(d, feed_forward(n, e, lambda a, b: nn.Conv1d(a, b, 1))),
            PreNorm(d, feed_forward(d, e, nn.Linear))) for _ in range(cfg["mixer_depth"])])
        self.layer_norm = nn.LayerNorm(d)
        self.hidden_linear = nn.Linear(d, d)
        self.output = nn.Module()
        self.output.linear = nn.Linear(d, 1)
        add_z(self, cfg)

    def run(self, steps, reverse):
        B = steps[0].shape[0]
        mem = self.hidden_state.unsqueeze(0).expand(B, -1, -1)
        cls = self.cls_token.unsqueeze(0).expand(B, -1, -1)
        outs = []
        for x in (reversed(steps) if reverse else steps):
            o = self.linear_forward(torch.cat([cls, x, mem] if reverse else [mem, x, cls], 1))
            mem = o[:, -1:] if reverse else o[:, :1]
            outs.append(self.hidden_linear(o[:, :1] if reverse else o[:, -1:]))
        return torch.cat(outs, 1).mean(1)

    def forward(self, q, score=None):
        x = self.linear1(seq_input(self, **q))
        steps = list(x.split(self.n, dim=1))
        y = self.output.linear((self.run(steps, False) + self.run(steps, True)) / 2).squeeze(1)
        return y, None if score is None else F.mse_loss(y, score)


HEADS = {"tpt": TPT, "hgcn": HGCN, "gdlt": GDLT, "mslstm": MSLSTM, "mixer": Mixer}
