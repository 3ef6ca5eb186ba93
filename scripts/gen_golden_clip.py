#!/usr/bin/env python3
"""Golden data for tests/test_clip.c: our own PyTorch implementation of CLIP (the ViT variant,
written after the structure of OpenAI's clip/model.py: ResidualAttentionBlock with
nn.MultiheadAttention in [L, N, E] layout, QuickGELU MLP, causal mask in the text transformer,
class token, ln_pre/ln_post, EOT pooling by argmax) with random weights in OpenAI's layout and a
tiny configuration, so the files stay small.

Writes under tests/data/clip/:
  tiny_openai.safetensors  the weights with OpenAI's state_dict names (+ heads in __metadata__)
  tiny_hf.safetensors      the same weights with Hugging Face CLIPModel names (q/k/v split,
                           projections transposed, position_ids buffers), as transformers stores
  golden.safetensors       inputs (images, token_ids), image_embeds, text_embeds, logits_per_image,
                           and gradients of L = sum(text_embeds * text_R) + sum(image_embeds *
                           image_R) for a few weights ("grad.<name>") and the images.

The configuration is too narrow for OpenAI's heads = width / 64: the heads are given in the
files' __metadata__ ("vision_heads", "text_heads"), which aqa_clip_load reads.  The vocabulary
has 128 ids; SOT/EOT are 126/127 so EOT stays the largest id (CLIP's argmax pooling).

When transformers is installed, the Hugging Face-named file is also loaded into transformers'
own CLIPModel (quick_gelu, the tiny configuration) and its embeddings are checked against ours,
an independent check of the name map, q/k/v split and transposes (--no-hf-check skips it).

bench_torch_clip.py imports the model classes from here.  Run: python3 scripts/gen_golden_clip.py
"""
import math
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, attn_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = nn.LayerNorm(width)
        self.attn_mask = attn_mask

    def forward(self, x):  # x [L, N, E]
        mask = self.attn_mask
        if mask is not None:
            mask = mask[: x.shape[0], : x.shape[0]].to(dtype=x.dtype, device=x.device)
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, attn_mask=None):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim):
        super().__init__()
        self.input_resolution = input_resolution
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x)  # [N, W, g, g]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [N, g*g, W]
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)  # NLD -> LND -> NLD
        return self.ln_post(x[:, 0, :]) @ self.proj


class CLIP(nn.Module):
    def __init__(self, embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size, context_length,
                 vocab_size, transformer_width, transformer_heads, transformer_layers, vision_heads=None):
        super().__init__()
        self.context_length = context_length
        self.visual = VisionTransformer(image_resolution, vision_patch_size, vision_width, vision_layers,
                                        vision_heads or vision_width // 64, embed_dim)
        self.transformer = Transformer(transformer_width, transformer_layers, transformer_heads,
                                       attn_mask=self.build_attention_mask())
        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, transformer_width))
        self.ln_final = nn.LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(torch.empty(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.initialize_parameters()

    def initialize_parameters(self):
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        w = self.transformer.width
        proj_std = (w ** -0.5) * ((2 * self.transformer.layers) ** -0.5)
        attn_std, fc_std = w ** -0.5, (2 * w) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=w ** -0.5)

    def build_attention_mask(self):
        mask = torch.empty(self.context_length, self.context_length)
        mask.fill_(float("-inf"))
        return mask.triu_(1)

    def encode_image(self, image):
        return self.visual(image)

    def encode_text(self, text):
        x = self.token_embedding(text) + self.positional_embedding[: text.shape[1]]
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection

    def forward(self, image, text):
        im = self.encode_image(image)
        tx = self.encode_text(text)
        im = im / im.norm(dim=1, keepdim=True)
        tx = tx / tx.norm(dim=1, keepdim=True)
        return self.logit_scale.exp() * im @ tx.t()


def hf_state_dict(sd):
    """OpenAI names -> Hugging Face CLIPModel names (transformers' convert script, reversed)."""
    out = {}

    def layers(prefix_oa, prefix_hf):
        idx = sorted({int(k[len(prefix_oa):].split(".")[0]) for k in sd if k.startswith(prefix_oa)})
        for i in idx:
            a, h = f"{prefix_oa}{i}.", f"{prefix_hf}{i}."
            for kind in ("weight", "bias"):
                q, k, v = sd[a + f"attn.in_proj_{kind}"].chunk(3, dim=0)
                out[h + f"self_attn.q_proj.{kind}"] = q
                out[h + f"self_attn.k_proj.{kind}"] = k
                out[h + f"self_attn.v_proj.{kind}"] = v
                out[h + f"self_attn.out_proj.{kind}"] = sd[a + f"attn.out_proj.{kind}"]
                out[h + f"layer_norm1.{kind}"] = sd[a + f"ln_1.{kind}"]
                out[h + f"layer_norm2.{kind}"] = sd[a + f"ln_2.{kind}"]
                out[h + f"mlp.fc1.{kind}"] = sd[a + f"mlp.c_fc.{kind}"]
                out[h + f"mlp.fc2.{kind}"] = sd[a + f"mlp.c_proj.{kind}"]

    out["logit_scale"] = sd["logit_scale"]
    out["text_model.embeddings.token_embedding.weight"] = sd["token_embedding.weight"]
    out["text_model.embeddings.position_embedding.weight"] = sd["positional_embedding"]
    out["text_model.embeddings.position_ids"] = torch.arange(sd["positional_embedding"].shape[0]).unsqueeze(0)
    layers("transformer.resblocks.", "text_model.encoder.layers.")
    for kind in ("weight", "bias"):
        out[f"text_model.final_layer_norm.{kind}"] = sd[f"ln_final.{kind}"]
        out[f"vision_model.pre_layrnorm.{kind}"] = sd[f"visual.ln_pre.{kind}"]
        out[f"vision_model.post_layernorm.{kind}"] = sd[f"visual.ln_post.{kind}"]
    out["vision_model.embeddings.class_embedding"] = sd["visual.class_embedding"]
    out["vision_model.embeddings.patch_embedding.weight"] = sd["visual.conv1.weight"]
    out["vision_model.embeddings.position_embedding.weight"] = sd["visual.positional_embedding"]
    out["vision_model.embeddings.position_ids"] = torch.arange(sd["visual.positional_embedding"].shape[0]).unsqueeze(0)
    layers("visual.transformer.resblocks.", "vision_model.encoder.layers.")
    out["visual_projection.weight"] = sd["visual.proj"].t()
    out["text_projection.weight"] = sd["text_projection"].t()
    return {k: v.contiguous() for k, v in out.items()}


TINY = dict(embed_dim=16, image_resolution=16, vision_layers=2, vision_width=24, vision_patch_size=4,
            context_length=16, vocab_size=128, transformer_width=24, transformer_heads=2, transformer_layers=2,
            vision_heads=3)
SOT, EOT = 126, 127

GRAD_NAMES = [
    "positional_embedding", "text_projection", "token_embedding.weight", "ln_final.bias",
    "transformer.resblocks.0.attn.in_proj_weight", "transformer.resblocks.0.attn.in_proj_bias",
    "transformer.resblocks.0.ln_1.weight", "transformer.resblocks.1.mlp.c_fc.weight",
    "transformer.resblocks.1.attn.out_proj.weight",
    "visual.conv1.weight", "visual.class_embedding", "visual.proj",
    "visual.transformer.resblocks.1.attn.in_proj_bias", "visual.ln_pre.weight",
]


def check_with_transformers(hf_path, golden):
    """Loads the Hugging Face-named weights into transformers.CLIPModel and compares embeddings."""
    try:
        import transformers
        from transformers import CLIPConfig, CLIPModel
    except ImportError:
        print("transformers not installed: Hugging Face names not cross-checked", file=sys.stderr)
        return
    from safetensors.torch import load_file
    t = dict(hidden_act="quick_gelu", layer_norm_eps=1e-5)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=TINY["vocab_size"], hidden_size=TINY["transformer_width"],
                         intermediate_size=4 * TINY["transformer_width"], num_hidden_layers=TINY["transformer_layers"],
                         num_attention_heads=TINY["transformer_heads"], max_position_embeddings=TINY["context_length"],
                         eos_token_id=2, bos_token_id=0, pad_token_id=1, **t),  # eos 2: pool at argmax(ids), as OpenAI
        vision_config=dict(hidden_size=TINY["vision_width"], intermediate_size=4 * TINY["vision_width"],
                           num_hidden_layers=TINY["vision_layers"], num_attention_heads=TINY["vision_heads"],
                           image_size=TINY["image_resolution"], patch_size=TINY["vision_patch_size"], **t),
        projection_dim=TINY["embed_dim"])
    model = CLIPModel(cfg).eval()
    sd = {k: v for k, v in load_file(hf_path).items() if not k.endswith("position_ids")}
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        out = model(input_ids=golden["token_ids"], pixel_values=golden["images"])
    errs = [((a - golden[b]).abs().max() / golden[b].abs().max()).item()
            for a, b in ((out.image_embeds, "image_embeds_n"), (out.text_embeds, "text_embeds_n"),
                         (out.logits_per_image, "logits_per_image"))]
    print(f"transformers {transformers.__version__} CLIPModel on the HF-named file: relative errors "
          f"image {errs[0]:.2g}, text {errs[1]:.2g}, logits {errs[2]:.2g}", file=sys.stderr)
    if max(errs) > 1e-5:
        raise SystemExit("the Hugging Face-named weights do not reproduce our embeddings in transformers")


def main():
    from safetensors.torch import save_file

    torch.manual_seed(20261126)
    model = CLIP(**TINY)
    with torch.no_grad():  # non-trivial norms and biases, so a mix-up of them shows
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif ("ln" in name or "norm" in name) and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
    ctx = TINY["context_length"]
    g = torch.Generator().manual_seed(7)
    ids = torch.zeros(4, ctx, dtype=torch.long)
    lengths = [3, ctx - 2, 0, 6]  # row 1 fills the context (EOT last), row 2 is an empty text
    for r, n in enumerate(lengths):
        ids[r, 0] = SOT
        ids[r, 1:1 + n] = torch.randint(1, SOT, (n,), generator=g)
        ids[r, 1 + n] = EOT
    images = torch.randn(3, 3, TINY["image_resolution"], TINY["image_resolution"], generator=g)
    images.requires_grad_(True)

    img = model.encode_image(images)
    txt = model.encode_text(ids)
    logits = model(images, ids)
    text_R = torch.randn(txt.shape, generator=g)
    image_R = torch.randn(img.shape, generator=g)
    loss = (txt * text_R).sum() + (img * image_R).sum()
    loss.backward()

    params = dict(model.named_parameters())
    out = {
        "images": images.detach(), "token_ids": ids, "image_embeds": img.detach(), "text_embeds": txt.detach(),
        "logits_per_image": logits.detach(), "text_R": text_R, "image_R": image_R, "grad.images": images.grad,
    }
    for n in GRAD_NAMES:
        out["grad." + n] = params[n].grad
    out = {k: v.contiguous() for k, v in out.items()}

    here = os.path.dirname(os.path.abspath(__file__))
    dst = os.path.join(here, "..", "tests", "data", "clip")
    os.makedirs(dst, exist_ok=True)
    meta = {"torch": torch.__version__, "vision_heads": str(TINY["vision_heads"]),
            "text_heads": str(TINY["transformer_heads"]), "generator": "scripts/gen_golden_clip.py"}
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(dst, "tiny_openai.safetensors"), metadata=meta)
    save_file(hf_state_dict(sd), os.path.join(dst, "tiny_hf.safetensors"), metadata=meta)
    save_file(out, os.path.join(dst, "golden.safetensors"), metadata={"torch": torch.__version__})
    total = sum(os.path.getsize(os.path.join(dst, f)) for f in os.listdir(dst))
    print(f"wrote {dst} ({total} bytes), torch {torch.__version__}", file=sys.stderr)
    if "--no-hf-check" not in sys.argv:
        norm = {"image_embeds_n": img / img.norm(dim=-1, keepdim=True), "text_embeds_n": txt / txt.norm(dim=-1, keepdim=True)}
        check_with_transformers(os.path.join(dst, "tiny_hf.safetensors"),
                                {**{k: v.detach() for k, v in out.items()}, **{k: v.detach() for k, v in norm.items()}})


if __name__ == "__main__":
    main()
