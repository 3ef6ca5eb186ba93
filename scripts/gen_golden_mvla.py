"""gen_golden_mvla.py: writes tests/data/golden_mvla.safetensors for tests/test_mvla.c: a tiny
FAM MVLA + TSA head (scripts/mvla_torch.py; TSA's keys and values from 2 x 2 I3D maps, Z as extra
tokens) with its weights, inputs, every output and loss term, all gradients after backward of the
total loss, the state after one Adam step (two parameter groups: lr 1e-4 for the temporal
transformer and projections, 1e-3 for the rest), an eval-mode inference forward after the step;
the head with Z as biases ("tsa_bias.*"); PSNet's maps in both layouts ("layout.*"); a FUM model's
forward and gradients ("fum.*"); the same FUM model with graded texts, SCA picking among
candidates without the true grades ("grade.nearest.*", "grade.all.*"); CoRe's tree's loss,
prediction and gradients with DD ("core.*"); USDL and MUSDL (judge counts 7/5/3, FINA rule;
JIGSAWS-style SUM rule) with weights given by a formula the C test recomputes ("usdl.*",
"musdl.*": their 256/128 MLPs would not fit the size budget as stored weights);
the loss terms of both models with eq. 5's summed reduction ("sum.*", "fumsum.*"); and a tiny CLIP
text encoder fine-tuned through MVLA ("ft.*": its weights, the token ids, the text tables it gives,
the loss, the text side's gradients and its weights after one Adam step in the lr 1e-4 group).

    python3 scripts/gen_golden_mvla.py [out_path]"""
import json
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import gen_golden_clip as GC  # noqa: E402
import mvla_torch as M  # noqa: E402

CFG = M.default_config(num_clips=3, i3d_dim=64, num_frames=8, clip_feat_dim=8, text_dim=12, dim=8,
                       num_boundaries=2, seg_mlp_hidden1=8, seg_mlp_hidden2=8, temporal_layers=2,
                       temporal_heads=2, temporal_ffn=16, temporal_dropout=0.0, sca_mlp_hidden=8,
                       feat_dim=8, frame_dim=4, tsa_tokens=5, tsa_dim=4, tsa_heads=2, tsa_layers=2,
                       tsa_mlp_ratio=4.0, tsa_reg_hidden1=8, tsa_reg_hidden2=8)


def formula_weights(module, salt):
    """Deterministic parameters: w[k] = sin(0.37 k + 0.11 salt + 0.7 n) / sqrt(fan_in) for the n-th
    parameter tensor (in named_parameters order) flattened, k its element index, fan_in its second
    dimension (100 for biases); the C test recomputes them."""
    with torch.no_grad():
        for n, (_, p) in enumerate(module.named_parameters()):
            k = torch.arange(p.numel(), dtype=torch.float64)
            fan_in = p.shape[1] if p.dim() > 1 else 100
            p.copy_((torch.sin(0.37 * k + 0.11 * salt + 0.7 * n) / fan_in ** 0.5).reshape(p.shape).to(p.dtype))


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/golden_mvla.safetensors"
    torch.manual_seed(0)
    m = M.MVLA(CFG)
    h = M.TSAHead(CFG)
    # non-trivial BatchNorm affine parameters and a larger positional embedding
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
        m.temporal.pos_embed.normal_(0, 0.5)
    t = {}
    for n, v in m.state_dict().items():
        t["p." + n] = v.clone()
    for n, v in h.state_dict().items():
        t["hp." + n] = v.clone()

    B, T, N = 4, CFG["num_frames"], CFG["num_clips"]
    i3d = torch.randn(B, N, CFG["i3d_dim"])
    i3d_map = torch.randn(B, N, CFG["i3d_dim"], 2, 2)
    vis = torch.randn(B, T, CFG["clip_feat_dim"])
    stage_text = torch.randn(5, CFG["text_dim"], requires_grad=True)
    video_text = torch.randn(4, CFG["text_dim"], requires_grad=True)
    stage_ids = torch.tensor([[0, 1, 2], [0, 3, 2], [4, 1, 2], [0, 3, 4]])
    video_ids = torch.tensor([0, 1, 2, 3])
    boundaries = torch.tensor([[2, 5], [3, 6], [1, 4], [4, 7]])
    scores = torch.tensor([70.5, 82.0, 64.0, 90.25])
    # PSNet on the maps in both layouts, eval mode, before any training
    m.eval()
    with torch.no_grad():
        t["layout.tsa"] = m.segment_maps(i3d_map)
        m.c["map_layout"] = "position"
        t["layout.position"] = m.segment_maps(i3d_map)
        m.c["map_layout"] = "tsa"
    t.update({"in.i3d": i3d, "in.i3d_map": i3d_map, "in.vis": vis, "in.stage_text": stage_text.detach().clone(), "in.video_text": video_text.detach().clone(),
              "in.stage_ids": stage_ids, "in.video_ids": video_ids, "in.boundaries": boundaries,
              "in.scores": scores})

    m.train()
    h.train()
    o = m(i3d, vis, stage_text, video_text, stage_ids, video_ids, boundaries, teacher_forcing=True, i3d_map=i3d_map)
    q, e = M.head_input(o, 0, 2), M.head_input(o, 2, 2)
    pred, hloss = h(q, e, scores[2:], scores[:2])
    # the same head with Z as biases of the tokens (tsa_z_bias)
    with torch.no_grad():
        hb = M.TSAHead(dict(CFG, tsa_z_bias=True))
        hb.load_state_dict(h.state_dict())
        bpred, bloss = hb({k: (v.detach() if v is not None else None) for k, v in q.items()},
                          {k: (v.detach() if v is not None else None) for k, v in e.items()}, scores[2:], scores[:2])
    t.update({"tsa_bias.pred": bpred, "tsa_bias.loss": bloss})
    total = hloss
    for v in o["losses"].values():
        total = total + v
    t.update({"out.frames": o["frames"], "out.frame_maps": o["frame_maps"], "out.prob": o["boundary_prob"], "out.pred_boundaries": o["pred_boundaries"],
              "out.stage": o["stage"], "out.video": o["video"], "out.head_pred": pred, "out.total": total})
    for k, v in o["losses"].items():
        t["loss." + k] = v
    t["loss.head"] = hloss
    total.backward()
    for n, p in m.named_parameters():
        t["g." + n] = p.grad.clone()
    for n, p in h.named_parameters():
        t["hg." + n] = p.grad.clone()
    t["g.stage_text"] = stage_text.grad.clone()
    t["g.video_text"] = video_text.grad.clone()
    bb, rest = M.param_groups(m, h)
    opt = torch.optim.Adam([{"params": bb, "lr": 1e-4}, {"params": rest, "lr": 1e-3}], lr=1e-3, weight_decay=0)
    opt.step()
    for n, v in m.state_dict().items():
        t["a." + n] = v.clone()
    for n, v in h.state_dict().items():
        t["ha." + n] = v.clone()

    # inference after the step: eval-mode BatchNorm, predicted boundaries, no losses
    m.eval()
    h.eval()
    with torch.no_grad():
        o2 = m(i3d, vis, stage_text, video_text.detach(), stage_ids, video_ids, None, teacher_forcing=False,
               compute_losses=False, i3d_map=i3d_map)
        p2, _ = h(M.head_input(o2, 0, 2), M.head_input(o2, 2, 2), scores[2:])
    t.update({"inf.prob": o2["boundary_prob"], "inf.pred_boundaries": o2["pred_boundaries"], "inf.stage": o2["stage"],
              "inf.video": o2["video"], "inf.frames": o2["frames"], "inf.head_pred": p2})

    # FUM (fixed clip boundaries, KL term): forward and gradients
    fcfg = dict(CFG, scheme="FUM", clip_len=4, clip_stride=3, fum_boundaries=[1, 2])
    torch.manual_seed(1)
    mf = M.MVLA(fcfg)
    for n, v in mf.state_dict().items():
        t["fum.p." + n] = v.clone()
    mf.train()
    of = mf(i3d, vis, stage_text.detach(), video_text.detach(), stage_ids, video_ids, None, teacher_forcing=False)
    # the loss terms plus 0.1 (sum Z^sta + sum Z^vid), so that SCA gets gradients too
    ftotal = sum(of["losses"].values()) + 0.1 * (of["stage"].sum() + of["video"].sum())
    t.update({"fum.out.stage": of["stage"], "fum.out.video": of["video"], "fum.out.total": ftotal})
    for k, v in of["losses"].items():
        t["fum.loss." + k] = v
    ftotal.backward()
    for n, p in mf.named_parameters():
        t["fum.g." + n] = p.grad.clone()

    # graded texts (JIGSAWS, Fis-V, + Quality Text): G = 2 candidates per stage / video, inference
    # without the true grades; Z and the gradient of sum(Z) with respect to the stage-text table
    stage_cands = torch.tensor([[[0, 1], [2, 3], [4, 0]], [[1, 2], [3, 4], [0, 2]], [[4, 3], [1, 0], [2, 4]],
                                [[3, 1], [0, 4], [1, 3]]])
    video_cands = torch.tensor([[0, 1], [2, 3], [1, 2], [3, 0]])
    t.update({"in.stage_cands": stage_cands, "in.video_cands": video_cands})
    for mode in ("nearest", "all"):
        mg = M.MVLA(dict(fcfg, grade_texts=mode))
        mg.load_state_dict(mf.state_dict())
        mg.eval()
        st = stage_text.detach().clone().requires_grad_(True)
        og = mg(i3d, vis, st, video_text, None, None, None, teacher_forcing=False, compute_losses=False,
                stage_cands=stage_cands, video_cands=video_cands)
        (og["stage"].sum() + og["video"].sum()).backward()
        t.update({f"grade.{mode}.stage": og["stage"], f"grade.{mode}.video": og["video"],
                  f"grade.{mode}.g_stage_text": st.grad.clone()})

    # CoRe's tree (depth 3, hidden 8, theta 10) on 6-d features, scores over each video's own DD
    torch.manual_seed(2)
    core = M.RegressTree(6, 8, 3, 10.0)
    core.set_groups([1.0, 0.5, 2.0, 1.5])
    fq, fe = torch.randn(3, 6), torch.randn(3, 6)
    s_q, s_e = torch.tensor([5.0, 2.0, 7.0]), torch.tensor([4.5, 3.5, 6.0])
    dd_q, dd_e = torch.tensor([2.0, 1.0, 2.5]), torch.tensor([1.5, 1.0, 2.0])
    for n, v in core.state_dict().items():
        t["core.p." + n] = v.clone()
    cp, cl = core(fq, fe, s_e, s_q, dd_q, dd_e)
    cl.backward()
    t.update({"heads.fq": fq, "heads.fe": fe, "heads.s_q": s_q, "heads.s_e": s_e, "heads.dd_q": dd_q,
              "heads.dd_e": dd_e, "core.pred": cp, "core.loss": cl})
    for n, p in core.named_parameters():
        t["core.g." + n] = p.grad.clone()

    # USDL (11 bins over [0, 10], sigma 1.5, KL 'mean') and MUSDL on [Z^vid, Z^sta] of 2-d Z (S = 3:
    # 8 values), weights by formula_weights; gradients w.r.t. the feature
    zf = (3 * torch.randn(3, 8, dtype=torch.float64)).requires_grad_()
    u = M.USDL(8, 11, 0.0, 10.0, 1.5, kl_mean=True).double()
    formula_weights(u, 1)
    up, ul = u(zf, torch.tensor([3.0, 7.5, 9.0]))
    ul.backward()
    t.update({"usdl.z": zf.detach(), "usdl.pred": up, "usdl.loss": ul, "usdl.gz": zf.grad.clone()})
    zf.grad = None
    mu = M.MUSDL(8, 7, 21, 0.0, 10.0, 5.0, rule="fina").double()
    formula_weights(mu, 2)
    counts = torch.tensor([7, 5, 3])
    judges = torch.tensor([[8.5, 9.0, 8.5, 8.0, 9.0, 8.5, 8.0], [7.0, 7.5, 7.0, 6.5, 7.0, 0, 0],
                           [8.0, 8.0, 7.5, 0, 0, 0, 0]], dtype=torch.float64)
    dd = torch.tensor([3.2, 3.0, 2.0], dtype=torch.float64)
    mp, ml = mu(zf, counts, dd, judges)
    ml.backward()
    t.update({"musdl.counts": counts, "musdl.judges": judges, "musdl.dd": dd, "musdl.pred": mp, "musdl.loss": ml,
              "musdl.gz": zf.grad.clone()})
    zf.grad = None
    js = M.MUSDL(8, 6, 5, 1.0, 5.0, 1.0, rule="sum").double()
    formula_weights(js, 3)
    grs = torch.tensor([[3, 4, 2, 5, 3, 4], [1, 2, 2, 3, 1, 2], [5, 5, 4, 5, 4, 5]], dtype=torch.float64)
    jp, jl = js(zf, torch.tensor([6, 6, 6]), None, grs)
    t.update({"musdl_sum.judges": grs, "musdl_sum.pred": jp, "musdl_sum.loss": jl})

    # eq. 5 summed over each video's rows (vlkl_reduction "sum"), same weights and inputs
    for prefix, cfg, key, bnd in (("sum.", dict(CFG, vlkl_reduction="sum"), "p.", boundaries),
                                  ("fumsum.", dict(fcfg, vlkl_reduction="sum"), "fum.p.", None)):
        ms = M.MVLA(cfg)
        ms.load_state_dict({n[len(key):]: v for n, v in t.items() if n.startswith(key)})
        ms.train()
        os_ = ms(i3d, vis, stage_text.detach(), video_text.detach(), stage_ids, video_ids, bnd,
                 teacher_forcing=bnd is not None)
        for k, v in os_["losses"].items():
            t[prefix + "loss." + k] = v

    fine_tuned_text(t, i3d, vis, stage_ids, video_ids, boundaries)

    # float32, except the f64 USDL/MUSDL cases (stored exactly as computed)
    t = {k: (v.detach().contiguous().long() if not v.is_floating_point() else
             v.detach().contiguous().double() if k.startswith(("usdl.", "musdl")) else v.detach().contiguous().float())
         for k, v in t.items()}
    meta = {"torch": torch.__version__, "config": json.dumps(CFG), "script": "scripts/gen_golden_mvla.py"}
    save_file(t, out_path, metadata=meta)
    print(out_path, len(t), "tensors")


def fine_tuned_text(t, i3d, vis, stage_ids, video_ids, boundaries):
    """The CLIP text encoder fine-tuned through MVLA: tables from token ids, the FAM losses plus
    0.1 (sum Z^sta + sum Z^vid), backward into the text side, one Adam step with the text side in
    the lr 1e-4 group (mvla_torch.param_groups)."""
    torch.manual_seed(3)
    clip = GC.CLIP(embed_dim=CFG["text_dim"], image_resolution=4, vision_layers=1, vision_width=8,
                   vision_patch_size=2, context_length=6, vocab_size=16, transformer_width=8, transformer_heads=2,
                   transformer_layers=1, vision_heads=2)
    for n, v in clip.state_dict().items():
        t["ft.clip." + n] = v.clone()
    # SOT 14, EOT 15 (the largest id: CLIP pools the EOT position by argmax), padding 0
    stage_tok = torch.tensor([[14, 1, 2, 15, 0, 0], [14, 3, 15, 0, 0, 0], [14, 4, 5, 6, 15, 0], [14, 7, 15, 0, 0, 0],
                              [14, 8, 9, 15, 0, 0]])
    video_tok = torch.tensor([[14, 1, 2, 3, 15, 0], [14, 4, 15, 0, 0, 0], [14, 5, 6, 7, 8, 15], [14, 9, 10, 11, 15, 0]])
    t.update({"ft.in.stage_tokens": stage_tok, "ft.in.video_tokens": video_tok})
    m = M.MVLA(CFG)
    m.load_state_dict({n[2:]: v for n, v in t.items() if n.startswith("p.")})
    m.train()
    st, vt = clip.encode_text(stage_tok), clip.encode_text(video_tok)
    o = m(i3d, vis, st, vt, stage_ids, video_ids, boundaries, teacher_forcing=True)
    total = sum(o["losses"].values()) + 0.1 * (o["stage"].sum() + o["video"].sum())
    t.update({"ft.stage_text": st, "ft.video_text": vt, "ft.total": total})
    bb, rest = M.param_groups(m, None, clip)
    opt = torch.optim.Adam([{"params": bb, "lr": 1e-4}, {"params": rest, "lr": 1e-3}], lr=1e-3, weight_decay=0)
    total.backward()
    for n, p in clip.named_parameters():
        t["ft.g." + n] = p.grad.clone() if p.grad is not None else torch.zeros_like(p)
    opt.step()
    for n, v in clip.state_dict().items():
        t["ft.a." + n] = v.clone()


if __name__ == "__main__":
    main()
