"""mvla_torch.py: a PyTorch implementation of aqa's MVLA model and TSA head (models/mvla,
models/heads/tsa.c), module for module with the same parameter names, so weights move between
the two through safetensors.  Used by scripts/gen_golden_mvla.py (parity files for
tests/test_mvla.c) and scripts/bench_torch_mvla.py (the PyTorch side of `make bench`).

It follows the C code's choices (documented in models/mvla/mvla.h), not any released MVLA code;
the heads follow their authors' code (xujinglin/FineDiving for TSA, yuxumin/CoRe, nzl-thu/MUSDL)
where models/heads/*.c say so.  Both schemes: FAM (segmentation module, the benchmark's case, with
TSA's I3D feature maps) and FUM (fixed clip boundaries, KL)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def default_config(**kw):
    c = dict(scheme="FAM", clip_len=16, clip_stride=10, fum_boundaries=None, vlkl_reduction="mean", num_clips=9, i3d_dim=1024, num_frames=96, clip_feat_dim=512, text_dim=512, dim=512,
             num_boundaries=2, seg_mlp_hidden1=128, seg_mlp_hidden2=64, use_vlp=True, temporal_layers=2,
             temporal_heads=8, temporal_ffn=2048, temporal_dropout=0.1, vlkl_frame=True, vlkl_stage=True,
             vlkl_video=True, tau_init=0.07, sca=True, sca_mlp_hidden=512, grade_texts="nearest", map_layout="tsa",
             # heads ("R regresses Z": use_z)
             feat_dim=512, frame_dim=64, num_stages=3, use_z=True, tsa_tokens=5, tsa_dim=64, tsa_heads=8, tsa_layers=3,
             tsa_mlp_ratio=4.0, tsa_reg_hidden1=256, tsa_reg_hidden2=64, tsa_z_bias=False)
    c.update(kw)
    return c


# ---- segmentation (TSA's PSNet) -------------------------------------------------------------
class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(cin, cout, 3, padding=1), nn.BatchNorm1d(cout), nn.ReLU(),
                                  nn.Conv1d(cout, cout, 3, padding=1), nn.BatchNorm1d(cout), nn.ReLU())

    def forward(self, x):
        return self.conv(x)


class Inconv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = DoubleConv(cin, cout)

    def forward(self, x):
        return self.conv(x)


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.mpconv = nn.Sequential(nn.MaxPool1d(2), DoubleConv(cin, cout))

    def forward(self, x):
        return self.mpconv(x)


class MLPTas(nn.Module):
    def __init__(self, cin, h1, h2, cout):
        super().__init__()
        self.layer1, self.layer2, self.layer3 = nn.Linear(cin, h1), nn.Linear(h1, h2), nn.Linear(h2, cout)

    def forward(self, x):
        return torch.sigmoid(self.layer3(F.relu(self.layer2(F.relu(self.layer1(x))))))


class PSNet(nn.Module):
    def __init__(self, n, c_i3d, T, h1, h2, L):
        super().__init__()
        ch = [n, T // 8, T // 4, T // 2, T, T]
        self.inc = Inconv(ch[0], ch[1])
        self.down1, self.down2 = Down(ch[1], ch[2]), Down(ch[2], ch[3])
        self.down3, self.down4 = Down(ch[3], ch[4]), Down(ch[4], ch[5])
        self.tas = MLPTas(c_i3d // 16, h1, h2, L)

    def forward(self, x):
        x = self.down4(self.down3(self.down2(self.down1(self.inc(x)))))
        return x, self.tas(x)


def select_boundaries(prob):
    """TSA's argmax per column over frames [l T/L, (l+1) T/L), made valid as the C code."""
    B, T, L = prob.shape
    num = round(T / L)
    p = prob.detach().double().cpu()
    out = torch.zeros(B, L, dtype=torch.long)
    for i in range(B):
        prev = 0
        for l in range(L):
            lo, hi = l * num, min((l + 1) * num, T)
            best = lo + int(p[i, lo:hi, l].argmax()) if hi > lo else min(lo, T - 1)
            if best <= prev:
                best = prev + 1
            if best > T - (L - l):
                best = T - (L - l)
            out[i, l] = best
            prev = best
    return out


def stage_bounds(b, T):
    L = len(b)
    return [(0 if s == 0 else int(b[s - 1]), T if s == L else int(b[s])) for s in range(L + 1)]


def stage_mean(x, boundaries):
    """x [B, T, C] -> [B, L + 1, C]."""
    T = x.shape[1]
    return torch.stack([torch.stack([x[i, a:e].mean(0) for a, e in stage_bounds(boundaries[i], T)])
                        for i in range(x.shape[0])])


def stage_of_steps(boundaries, T):
    B, L = boundaries.shape
    out = torch.zeros(B, T, dtype=torch.long)
    for i in range(B):
        for s, (a, e) in enumerate(stage_bounds(boundaries[i], T)):
            out[i, a:e] = s
    return out


def boundary_target(boundaries, T, dtype):
    B, L = boundaries.shape
    t = torch.zeros(B, T, L, dtype=dtype)
    for i in range(B):
        for l in range(L):
            t[i, int(boundaries[i, l]), l] = 1
    return t


# ---- VLP temporal transformer --------------------------------------------------------------
class Temporal(nn.Module):
    def __init__(self, T, width, layers, heads, ffn, dropout):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.randn(T, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, ffn, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(width), enable_nested_tensor=False)

    def forward(self, x):
        return self.encoder(x + self.pos_embed)


# ---- SCA (eq. 8) -----------------------------------------------------------------------------
class Mlp(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, h), nn.Linear(h, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class SCA(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.vis_q, self.vis_k, self.vis_v = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.vis_mlp = Mlp(d, h)
        self.cbp_q, self.cbp_k, self.cbp_v = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.cbp_mlp = Mlp(d, h)

    @staticmethod
    def half(q, k, v, mlp, x, kv):
        a = torch.softmax(q(x) @ k(kv).transpose(-1, -2) / math.sqrt(x.shape[-1]), -1) @ v(kv)
        x1 = a + x
        return mlp(x1) + x1

    def forward(self, vis, text, i3d):
        x = self.half(self.vis_q, self.vis_k, self.vis_v, self.vis_mlp, vis, text)
        return self.half(self.cbp_q, self.cbp_k, self.cbp_v, self.cbp_mlp, i3d, x)


# ---- VLKL ------------------------------------------------------------------------------------
def l2n(x):
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def inv_tau(log_tau):
    return torch.exp(-log_tau.clamp(min=math.log(0.01)))


def vlkl_ce(x, texts, ids, log_tau, reduction="mean", videos=1):
    """eq. 5: "mean" over all rows (the C default), or "sum" as written: summed over the rows,
    divided by the number of videos in the batch."""
    logits = (l2n(x) @ l2n(texts).t()) * inv_tau(log_tau)
    if reduction == "sum":
        return F.cross_entropy(logits, ids, reduction="sum") / videos
    return F.cross_entropy(logits, ids)


def vlkl_kl(i3d, vis, texts, log_tau, reduction="mean"):
    tn = l2n(texts).transpose(1, 2)
    s = inv_tau(log_tau)
    lp = torch.log_softmax((l2n(i3d) @ tn) * s, 1)
    lq = torch.log_softmax((l2n(vis) @ tn) * s, 1)
    kl = (lp.exp() * (lp - lq)).sum()
    return kl / i3d.shape[0] if reduction == "sum" else kl / (i3d.shape[0] * texts.shape[1])


def pick_texts(table, cands, feat, mode):
    """SCA's texts among graded candidates (aqa_mvla_pick_texts): table [C, D], cands [B, K, G],
    feat [B, K, D] -> the highest-cosine candidate of each slot [B, K, D] ("nearest", the paper's
    "highest-similarity textual semantics"), or every candidate [B, K G, D] ("all")."""
    B, K, G = cands.shape
    texts = table[cands.reshape(-1)].reshape(B, K, G, -1)
    if mode == "all":
        return texts.reshape(B, K * G, -1)
    with torch.no_grad():
        sim = (l2n(texts) * l2n(feat).unsqueeze(2)).sum(3)
        best = torch.gather(cands, 2, sim.argmax(2, keepdim=True)).reshape(-1)
    return table[best].reshape(B, K, -1)


LOSS_NAMES = ["bce", "vlkl_frame_i3d", "vlkl_stage_i3d", "vlkl_video_i3d", "vlkl_frame_vis", "vlkl_stage_vis",
              "vlkl_video_vis", "kl", "head"]


def fum_boundaries(c, B):
    L, N = c["num_boundaries"], c["num_clips"]
    b = c["fum_boundaries"] or [math.floor((l + 1) * N / (L + 1) + 0.5) for l in range(L)]
    return torch.tensor([list(b)] * B, dtype=torch.long)


def clip_pool_matrix(c):
    """Clip i averages frames [s, s + clip_len) with s = min(i stride, T - clip_len): the CBP clips
    of TSA's and CoRe's loaders (MTL-AQA: 0, 10, ..., 80, 87)."""
    N, T = c["num_clips"], c["num_frames"]
    m = torch.zeros(N, T)
    for i in range(N):
        a = max(0, min(i * c["clip_stride"], T - c["clip_len"]))
        e = min(a + c["clip_len"], T)
        m[i, a:e] = 1.0 / (e - a)
    return m


class MVLA(nn.Module):
    """MVLA as models/mvla/mvla.c (scheme "FAM" or "FUM")."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.log_tau = nn.Parameter(torch.full((1,), math.log(c["tau_init"])))
        D = c["dim"]
        self.i3d_proj = nn.Linear(c["i3d_dim"], D) if c["use_vlp"] and c["i3d_dim"] != D else None
        fam = c["scheme"] == "FAM"
        if fam:
            self.seg = PSNet(c["num_clips"], c["i3d_dim"], c["num_frames"], c["seg_mlp_hidden1"], c["seg_mlp_hidden2"],
                             c["num_boundaries"])
        if c["use_vlp"]:
            if fam:
                self.i3d_frame_proj = nn.Linear(c["i3d_dim"] // 16, D)
            self.temporal = Temporal(c["num_frames"], c["clip_feat_dim"], c["temporal_layers"], c["temporal_heads"],
                                     c["temporal_ffn"], c["temporal_dropout"])
            self.vis_proj = nn.Linear(c["clip_feat_dim"], D) if c["clip_feat_dim"] != D else None
            self.text_proj = nn.Linear(c["text_dim"], D) if c["text_dim"] != D else None
            if c["sca"]:
                self.sca_stage = SCA(D, c["sca_mlp_hidden"])
                self.sca_video = SCA(D, c["sca_mlp_hidden"])

    def segment_maps(self, i3d_map):
        """PSNet on the time-averaged Mixed_5c maps [B, N, C, H, W] -> [B, T, W, H W].  "tsa": TSA's
        code (helper.py): feamap.reshape(-1, N, C), then the output reshaped back in memory order;
        "position": each position's own [N, C] sequence."""
        B, N, C, H, W = i3d_map.shape
        if self.c["map_layout"] == "tsa":
            y, _ = self.seg(i3d_map.reshape(-1, N, C))
            return y.reshape(B, y.shape[1], y.shape[2], H * W)
        y, _ = self.seg(i3d_map.reshape(B, N, C, H * W).permute(0, 3, 1, 2).reshape(B * H * W, N, C))
        return y.reshape(B, H * W, y.shape[1], y.shape[2]).permute(0, 2, 3, 1)

    def forward(self, i3d, vis, stage_text, video_text, stage_ids, video_ids, boundaries, teacher_forcing=True,
                compute_losses=True, i3d_map=None, stage_cands=None, video_cands=None):
        """i3d_map [B, N, C, H, W]: the time-averaged Mixed_5c maps (TSA's keys and values).
        stage_cands [B, S, G] / video_cands [B, G]: graded texts' candidates (SCA picks among them;
        stage_ids / video_ids, the true grades, are then only the losses' targets and may be None
        without losses)."""
        c = self.c
        B, T, S = i3d.shape[0], c["num_frames"], c["num_boundaries"] + 1
        out, L = {}, {}
        self.cands = (stage_cands, video_cands)
        fi3d = self.i3d_proj(i3d) if self.i3d_proj is not None else i3d
        if c["scheme"] == "FUM":
            return self.forward_fum(fi3d, vis, stage_text, video_text, stage_ids, video_ids, compute_losses)
        seg_frames, prob = self.seg(i3d)
        out["frames"], out["boundary_prob"] = seg_frames, prob
        out["frame_maps"] = self.segment_maps(i3d_map) if i3d_map is not None else None
        out["pred_boundaries"] = select_boundaries(prob)
        used = boundaries if teacher_forcing else out["pred_boundaries"]
        out["boundaries"] = used
        if compute_losses and boundaries is not None:
            L["bce"] = F.binary_cross_entropy(prob, boundary_target(boundaries, T, prob.dtype))
        i3d_vid = fi3d.mean(1)
        if not c["use_vlp"]:
            out["stage"], out["video"] = stage_mean(seg_frames, used), i3d_vid
            out["losses"] = L
            return out
        fvis = self.temporal(vis)
        if self.vis_proj is not None:
            fvis = self.vis_proj(fvis)
        i3d_fra = self.i3d_frame_proj(seg_frames)
        i3d_sta, vis_sta, vis_vid = stage_mean(i3d_fra, used), stage_mean(fvis, used), fvis.mean(1)
        stage_tab = self.text_proj(stage_text) if self.text_proj is not None else stage_text
        video_tab = self.text_proj(video_text) if self.text_proj is not None else video_text
        sids, s_text, v_text = self.own_texts(stage_tab, video_tab, stage_ids, video_ids, B, S)
        if compute_losses:
            fstage = stage_of_steps(boundaries if boundaries is not None else used, T)
            fids = torch.gather(stage_ids, 1, fstage).reshape(-1)
            r = c["vlkl_reduction"]
            for name, fra, sta, vid in (("i3d", i3d_fra, i3d_sta, i3d_vid), ("vis", fvis, vis_sta, vis_vid)):
                if c["vlkl_frame"]:
                    L["vlkl_frame_" + name] = vlkl_ce(fra.reshape(B * T, -1), stage_tab, fids, self.log_tau, r, B)
                if c["vlkl_stage"]:
                    L["vlkl_stage_" + name] = vlkl_ce(sta.reshape(B * S, -1), stage_tab, sids, self.log_tau, r, B)
                if c["vlkl_video"]:
                    L["vlkl_video_" + name] = vlkl_ce(vid, video_tab, video_ids, self.log_tau, r, B)
        self.fuse(out, vis_sta, vis_vid, i3d_sta, i3d_vid, s_text, v_text, stage_tab, video_tab)
        out["losses"] = L
        return out

    @staticmethod
    def own_texts(stage_tab, video_tab, stage_ids, video_ids, B, S):
        if stage_ids is None:
            return None, None, None
        sids = stage_ids.reshape(-1)
        return sids, stage_tab[sids].reshape(B, S, -1), video_tab[video_ids]

    def fuse(self, out, vis_sta, vis_vid, i3d_sta, i3d_vid, s_text, v_text, stage_tab, video_tab):
        if self.c["sca"]:
            stage_cands, video_cands = self.cands
            if stage_cands is not None:
                s_text = pick_texts(stage_tab, stage_cands, vis_sta, self.c["grade_texts"])
                v_text = pick_texts(video_tab, video_cands.unsqueeze(1), vis_vid.unsqueeze(1), self.c["grade_texts"])
            else:
                v_text = v_text.unsqueeze(1)
            out["stage"] = self.sca_stage(vis_sta, s_text, i3d_sta)
            vt = torch.cat([v_text, s_text], 1)
            out["video"] = self.sca_video(vis_vid.unsqueeze(1), vt, i3d_vid.unsqueeze(1)).squeeze(1)
        else:
            out["stage"], out["video"] = i3d_sta, i3d_vid

    def forward_fum(self, fi3d, vis, stage_text, video_text, stage_ids, video_ids, compute_losses):
        c = self.c
        B, S = fi3d.shape[0], c["num_boundaries"] + 1
        out, L = {}, {}
        fb = fum_boundaries(c, B)
        out["frames"], out["boundaries"] = fi3d, fb
        i3d_sta, i3d_vid = stage_mean(fi3d, fb), fi3d.mean(1)
        if not c["use_vlp"]:
            out["stage"], out["video"], out["losses"] = i3d_sta, i3d_vid, L
            return out
        fvis = self.temporal(vis)
        if self.vis_proj is not None:
            fvis = self.vis_proj(fvis)
        vis_cli = clip_pool_matrix(c).to(fvis.dtype) @ fvis
        vis_sta, vis_vid = stage_mean(vis_cli, fb), vis_cli.mean(1)
        stage_tab = self.text_proj(stage_text) if self.text_proj is not None else stage_text
        video_tab = self.text_proj(video_text) if self.text_proj is not None else video_text
        sids, s_text, v_text = self.own_texts(stage_tab, video_tab, stage_ids, video_ids, B, S)
        if compute_losses:
            r = c["vlkl_reduction"]
            for name, sta, vid in (("i3d", i3d_sta, i3d_vid), ("vis", vis_sta, vis_vid)):
                if c["vlkl_stage"]:
                    L["vlkl_stage_" + name] = vlkl_ce(sta.reshape(B * S, -1), stage_tab, sids, self.log_tau, r, B)
                if c["vlkl_video"]:
                    L["vlkl_video_" + name] = vlkl_ce(vid, video_tab, video_ids, self.log_tau, r, B)
            L["kl"] = vlkl_kl(fi3d, vis_cli, s_text, self.log_tau, r)
        self.fuse(out, vis_sta, vis_vid, i3d_sta, i3d_vid, s_text, v_text, stage_tab, video_tab)
        out["losses"] = L
        return out


# ---- TSA head ------------------------------------------------------------------------------
class CrossAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q_map, self.k_map, self.v_map = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.proj = nn.Linear(dim, dim)

    def forward(self, q, v):
        B, N, C = q.shape
        NK, H = v.shape[1], self.heads
        qq = self.q_map(q).view(B, N, H, C // H).permute(0, 2, 1, 3)
        kk = self.k_map(v).view(B, NK, H, C // H).permute(0, 2, 1, 3)
        vv = self.v_map(v).view(B, NK, H, C // H).permute(0, 2, 1, 3)
        a = torch.softmax((qq @ kk.transpose(-2, -1)) * (C // H) ** -0.5, -1)
        return self.proj((a @ vv).transpose(1, 2).reshape(B, N, C))


class TSAMlp(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, h), nn.Linear(h, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class DecoderBlock(nn.Module):
    def __init__(self, dim, heads, ratio):
        super().__init__()
        self.norm_q, self.norm_v = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = TSAMlp(dim, int(dim * ratio))

    def forward(self, q, v):
        q = q + self.attn(self.norm_q(q), self.norm_v(v))
        return q + self.mlp(self.norm2(q))


class Decoder(nn.Module):
    def __init__(self, dim, heads, layers, ratio):
        super().__init__()
        self.model = nn.ModuleList([DecoderBlock(dim, heads, ratio) for _ in range(layers)])

    def forward(self, q, v):
        for blk in self.model:
            q = blk(q, v)
        return q


class Regressor(nn.Module):
    def __init__(self, d, h1, h2):
        super().__init__()
        self.layer1, self.layer2, self.layer3 = nn.Linear(d, h1), nn.Linear(h1, h2), nn.Linear(h2, 1)

    def forward(self, x):
        return self.layer3(F.relu(self.layer2(F.relu(self.layer1(x)))))


class TSAHead(nn.Module):
    """TSA's head (xujinglin/FineDiving): 5 query tokens per stage from the 1-D PSNet frames, keys and
    values from the other video's PSNet frame maps (5 x P tokens per stage, token k P + p, as
    seg_pool_3d) or its 1-D tokens; with use_z two Z tokens per stage on both sides (or, with
    tsa_z_bias, Z added to every token)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        E = c["tsa_dim"]
        self.decoder = Decoder(E, c["tsa_heads"], c["tsa_layers"], c["tsa_mlp_ratio"])
        self.regressor = Regressor(E, c["tsa_reg_hidden1"], c["tsa_reg_hidden2"])
        if c["use_z"]:
            self.stage_proj = nn.Linear(c["feat_dim"], E)
            self.video_proj = nn.Linear(c["feat_dim"], E)

    def stage_tokens(self, x, boundaries):
        """x [B, T, E] or [B, T, E, P] -> [B S, K P, E]."""
        K = self.c["tsa_tokens"]
        B, T, E = x.shape[:3]
        P = x.shape[3] if x.dim() == 4 else 1
        out = []
        for i in range(B):
            xi = x[i].reshape(T, E * P).t().unsqueeze(0)  # [1, E P, T]
            segs = [F.interpolate(xi[:, :, a:e], size=K, mode="linear", align_corners=True)
                    for a, e in stage_bounds(boundaries[i], T)]  # [1, E P, K] each
            out.append(torch.stack([sg[0].reshape(E, P, K).permute(2, 1, 0).reshape(K * P, E) for sg in segs]))
        return torch.cat(out, 0)

    def tokens(self, inp):
        q = self.stage_tokens(inp["frames"], inp["boundaries"])
        maps = inp.get("frame_maps")
        kv = self.stage_tokens(maps, inp["boundaries"]) if maps is not None else q
        if self.c["use_z"]:
            B, S, E = inp["stages"].shape[0], inp["stages"].shape[1], self.c["tsa_dim"]
            zs = self.stage_proj(inp["stages"]).reshape(B * S, 1, E)
            zv = self.video_proj(inp["video"]).reshape(B, 1, 1, E).expand(B, S, 1, E).reshape(B * S, 1, E)
            if self.c["tsa_z_bias"]:
                q, kv = q + zs + zv, kv + zs + zv
            else:
                q, kv = torch.cat([q, zs, zv], 1), torch.cat([kv, zs, zv], 1)
        return q, kv

    def regress(self, x, B):
        return self.regressor(x).reshape(B, -1).mean(1)

    def forward(self, q, e, s_e, s_q=None):
        B = q["frames"].shape[0]
        tq, tq_kv = self.tokens(q)
        te, te_kv = self.tokens(e)
        d12 = self.regress(self.decoder(tq, te_kv), B)
        pred = d12 + s_e
        loss = None
        if s_q is not None:
            d21 = self.regress(self.decoder(te, tq_kv), B)
            loss = F.mse_loss(d12, s_q - s_e) + F.mse_loss(d21, s_e - s_q)
        return pred, loss


def head_input(o, start, n):
    maps = o.get("frame_maps")
    return dict(frames=o["frames"][start:start + n], boundaries=o["boundaries"][start:start + n],
                stages=o["stage"][start:start + n], video=o["video"][start:start + n],
                frame_maps=maps[start:start + n] if maps is not None else None)


def head_feature(inp, use_z):
    """What the non-TSA heads regress: [Z^vid, Z^sta flattened] with use_z, else the video feature."""
    if not use_z:
        return inp["video"]
    return torch.cat([inp["video"], inp["stages"].reshape(inp["stages"].shape[0], -1)], 1)


def param_groups(mvla, head, text_encoder=None):
    """(backbone, rest) as aqa_mvla_param_groups: temporal + projections at lr 1e-4, the rest 1e-3;
    a fine-tuned CLIP text encoder (text_encoder: a CLIP model) joins the backbone group with its
    text side (everything but visual.* and logit_scale), as train_mvla does."""
    bb, rest = [], []
    for n, p in mvla.named_parameters():
        (bb if n.split(".")[0] in ("temporal", "vis_proj", "i3d_proj", "text_proj") else rest).append(p)
    if text_encoder is not None:
        bb += [p for n, p in text_encoder.named_parameters() if is_text_side(n)]
    return bb, rest + (list(head.parameters()) if head is not None else [])


def is_text_side(name):
    """A CLIP state_dict name of the text encoder (models/mvla/text_tables.h)."""
    return not name.startswith("visual.") and name != "logit_scale"


# ---- CoRe's regression tree, USDL and MUSDL (models/heads/core.c, usdl.c) ----------------------
class RegressTree(nn.Module):
    """CoRe's group-aware regression tree (yuxumin/CoRe) with the C head's loss and prediction:
    input (exemplar feature, query feature, exemplar score / theta), groups from Group_helper with
    Min 0 and Max theta, scores over each video's own DD when dd is given (usingDD)."""

    def __init__(self, feat_dim, hidden, depth, theta):
        super().__init__()
        self.levels, self.leaves, self.theta = depth - 1, 2 ** (depth - 1), theta
        self.first_layer = nn.Sequential(nn.Linear(2 * feat_dim + 1, hidden), nn.ReLU())
        self.feature_layers = nn.ModuleList([nn.Sequential(nn.Conv1d(2 ** d * hidden, 2 ** (d + 1) * hidden, 1, groups=2 ** d),
                                                           nn.ReLU()) for d in range(depth - 1)])
        self.clf_layers = nn.ModuleList([nn.Conv1d(2 ** d * hidden, 2 ** (d + 1), 1, groups=2 ** d) for d in range(depth - 1)])
        self.reg_layer = nn.Conv1d(self.leaves * hidden, self.leaves, 1, groups=self.leaves)
        self.register_buffer("groups", torch.zeros(self.leaves, 2, dtype=torch.float64))

    def set_groups(self, deltas):
        """Group_helper(deltas, depth, Symmetrical=True, Max=theta, Min=0)."""
        a = sorted(abs(float(d)) for d in deltas)
        n, half = len(a), self.leaves // 2
        g = torch.zeros(self.leaves, 2, dtype=torch.float64)
        for i in range(half):
            left = 0.0 if i == 0 else a[int(i / half * (n - 1))]
            right = self.theta if i == half - 1 else a[int((i + 1) / half * (n - 1))]
            g[half + i] = torch.tensor([left, right])
            g[half - 1 - i] = torch.tensor([-right, -left])
        self.groups.copy_(g)

    def tree(self, x):
        h = self.first_layer(x).unsqueeze(-1)
        M, prev = x.shape[0], None
        for d in range(self.levels):
            p = self.clf_layers[d](h).squeeze(-1)
            h = self.feature_layers[d](h)
            lp = torch.log_softmax(p.view(M, -1, 2), -1)
            if prev is not None:
                lp = lp + prev.view(M, -1, 1)
            prev = lp.reshape(M, -1)
        return prev, self.reg_layer(h).squeeze(-1)

    def leaf_of(self, d):
        g = self.groups.tolist()
        for i, (lo, hi) in enumerate(g):
            if (d >= 0 and lo <= d < hi) or (d < 0 and lo < d <= hi):
                break
        else:
            i = self.leaves - 1 if d >= 0 else 0
        lo, hi = g[i]
        return i, (d - lo if hi == lo else (d - lo) / (hi - lo))

    def forward(self, fq, fe, s_e, s_q=None, dd_q=None, dd_e=None):
        B = fq.shape[0]
        dq = dd_q if dd_q is not None else torch.ones(B)
        de = dd_e if dd_e is not None else torch.ones(B)
        c_e = s_e / de
        x = torch.cat([fe, fq, (c_e / self.theta).reshape(B, 1).to(fq.dtype)], 1)
        if s_q is not None:
            c_q = s_q / dq
            x = torch.cat([x, torch.cat([fq, fe, (c_q / self.theta).reshape(B, 1).to(fq.dtype)], 1)], 0)
        logp, delta = self.tree(x)
        g = self.groups.tolist()
        pred = []
        for i in range(B):
            k = int(logp[i].argmax())
            lo, hi = g[k]
            v = float(delta[i, k].detach())
            pred.append((float(c_e[i]) + (lo + v if hi == lo else lo + (hi - lo) * v)) * float(dq[i]))
        pred = torch.tensor(pred)
        if s_q is None:
            return pred, None
        loss = 0
        for direction in range(2):
            labels, rel = [], []
            for i in range(B):
                d = float(c_q[i] - c_e[i]) if direction == 0 else float(c_e[i] - c_q[i])
                k, r = self.leaf_of(d)
                labels.append(k)
                rel.append(r)
            lp, dl = logp[direction * B:(direction + 1) * B], delta[direction * B:(direction + 1) * B]
            loss = loss + F.nll_loss(lp, torch.tensor(labels))
            for k in set(labels):
                idx = [i for i in range(B) if labels[i] == k]
                loss = loss + F.mse_loss(dl[idx, k], torch.tensor([rel[i] for i in idx], dtype=dl.dtype))
        return pred, loss


class Evaluator(nn.Module):
    def __init__(self, d, bins):
        super().__init__()
        self.layer1, self.layer2, self.layer3 = nn.Linear(d, 256), nn.Linear(256, 128), nn.Linear(128, bins)

    def forward(self, x):
        return torch.log_softmax(self.layer3(F.relu(self.layer2(F.relu(self.layer1(x))))), -1)


def gaussian_target(s, bins, lo, hi, sigma):
    """nzl-thu/MUSDL's soft label: norm.pdf over bin indices at the score's position, normalised."""
    mu = (s.double() - lo) / (hi - lo) * (bins - 1)
    k = torch.arange(bins, dtype=torch.float64)
    t = torch.exp(-0.5 * ((k[None] - mu[:, None]) / sigma) ** 2)
    return t / t.sum(1, keepdim=True)


def kl_term(logp, target, mask, kl_mean):
    """KL(target || p) of the rows where mask, 'batchmean' or KLDivLoss's 'mean' over those rows."""
    kl = F.kl_div(logp, target.to(logp.dtype), reduction="none") * mask[:, None].to(logp.dtype)
    return kl.sum() / (mask.sum() * (logp.shape[1] if kl_mean else 1))


class USDL(nn.Module):
    """USDL with the Gaussian target over [lo, hi], KL ('batchmean' or 'mean') and argmax prediction."""

    def __init__(self, d, bins, lo, hi, sigma, kl_mean=False):
        super().__init__()
        self.evaluator, self.bins, self.lo, self.hi, self.sigma, self.kl_mean = Evaluator(d, bins), bins, lo, hi, sigma, kl_mean

    def forward(self, f, s=None):
        logp = self.evaluator(f)
        pred = self.lo + logp.argmax(-1).double() * (self.hi - self.lo) / (self.bins - 1)
        if s is None:
            return pred, None
        t = gaussian_target(s, self.bins, self.lo, self.hi, self.sigma)
        return pred, kl_term(logp, t, torch.ones(f.shape[0], dtype=torch.bool), self.kl_mean)


def combine_judges(rule, v, dd):
    """MUSDL's final score from one video's predicted judge scores: "fina" (middle 3 of 7, 0.6 x sum of
    5, sum of 3; other counts drop (n - 3) // 2 from each end; x DD) or "sum" (JIGSAWS)."""
    v = sorted(v)
    n = len(v)
    if rule == "sum":
        return sum(v)
    if n == 5:
        return 0.6 * sum(v) * dd
    drop = (n - 3) // 2 if n > 3 else 0
    return sum(v[drop:n - drop]) * dd


class MUSDL(nn.Module):
    """MUSDL with per-video judge counts: judges past a video's count are left out of its loss and
    prediction."""

    def __init__(self, d, judges, bins, lo, hi, sigma, rule="fina", kl_mean=False):
        super().__init__()
        self.evaluators = nn.ModuleList([Evaluator(d, bins) for _ in range(judges)])
        self.bins, self.lo, self.hi, self.sigma, self.rule, self.kl_mean = bins, lo, hi, sigma, rule, kl_mean

    def forward(self, f, counts, dd=None, judge_scores=None):
        B, J = f.shape[0], len(self.evaluators)
        dd = dd if dd is not None else torch.ones(B)
        preds, loss = [], 0
        for j, ev in enumerate(self.evaluators):
            logp = ev(f)
            preds.append(self.lo + logp.argmax(-1).double() * (self.hi - self.lo) / (self.bins - 1))
            mask = counts > j
            if judge_scores is not None and mask.any():
                t = gaussian_target(judge_scores[:, j], self.bins, self.lo, self.hi, self.sigma)
                loss = loss + kl_term(logp, t, mask, self.kl_mean)
        pred = torch.tensor([combine_judges(self.rule, [float(preds[j][i]) for j in range(int(counts[i]))], float(dd[i]))
                             for i in range(B)], dtype=torch.float64)
        return pred, (loss if judge_scores is not None else None)
