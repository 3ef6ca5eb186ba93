/* graph_conv.h: graph convolution over a dense adjacency, batched, as
 * torch_geometric.nn.DenseGCNConv (Kipf & Welling's GCN), with a learned adjacency as an option.
 *
 *   y = A' x W^T + b,   A' = D^-1/2 (A with its diagonal set to 1) D^-1/2   (normalize: GCN)
 *                       A' = A                                             (!normalize: raw)
 *
 * D holds the row sums of the looped A, clamped to at least 1 (as DenseGCNConv).  x [B, N, in]
 * (or [N, in]) holds the N nodes' features; A [N, N] (shared) or [B, N, N] weighs node j's
 * message to node i at A[i, j].  Differentiable in x, A, W and b (a learned adjacency trains). */
#ifndef AQA_NN_GRAPH_CONV_H
#define AQA_NN_GRAPH_CONV_H

#include "nn/linear.h"
#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A' = D^-1/2 (A with diagonal 1) D^-1/2 for adj [..., N, N] (differentiable). */
aqa_tensor *aqa_gcn_norm_adjacency(aqa_tensor *adj);

/* Options of aqa_graph_conv; the zero value is DenseGCNConv's behaviour. */
typedef struct aqa_graph_conv_opts {
    bool raw;         /* use A as given (y = A x W^T + b) instead of GCN-normalising it */
    aqa_tensor *mask; /* [B, N] bool or float: zeroes the rows of absent nodes in y (NULL: none) */
    int64_t groups;   /* 0 or 1: dense W; g: W [out, in / g] maps each of g channel groups to out / g
                         outputs, as a grouped 1x1 convolution (torch Conv1d(in, out, 1, groups=g)) */
} aqa_graph_conv_opts;

/* y = A' x W^T + b as above; weight [out, in / groups], bias [out] or NULL; opts NULL means the
 * defaults. */
aqa_tensor *aqa_graph_conv(aqa_tensor *x, aqa_tensor *adj, aqa_tensor *weight, aqa_tensor *bias,
                           const aqa_graph_conv_opts *opts);

/* DenseGCNConv(in_channels, out_channels, bias): child "lin" (a Linear without bias, weight
 * xavier-uniform as PyG's glorot) and parameter "bias" [out] (zeros), in PyG's state_dict order;
 * with num_nodes > 0 also a learned adjacency "adj" [num_nodes, num_nodes], initialised to the
 * identity (or a copy of adj_init), used when forward gets no adjacency. */
typedef struct aqa_graph_conv_layer {
    aqa_module base;          /* type "DenseGCNConv" */
    aqa_linear_layer *lin;    /* "lin": in -> out, no bias */
    aqa_tensor *bias;         /* "bias" [out] or NULL */
    aqa_tensor *adj;          /* "adj" [N, N] learned adjacency, or NULL */
    int64_t in_channels;      /* node features in */
    int64_t out_channels;     /* node features out */
    bool normalize;           /* GCN normalisation of the adjacency (true, DenseGCNConv) or raw */
} aqa_graph_conv_layer;

aqa_graph_conv_layer *aqa_graph_conv_layer_new(aqa_module *parent, const char *name, int64_t in_channels,
                                               int64_t out_channels, bool bias, bool normalize, int64_t num_nodes,
                                               aqa_tensor *adj_init);
/* adj NULL uses the learned adjacency (an error when the layer has none); mask may be NULL. */
aqa_tensor *aqa_graph_conv_layer_forward(aqa_graph_conv_layer *m, aqa_tensor *x, aqa_tensor *adj, aqa_tensor *mask);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_GRAPH_CONV_H */
