/* rnn.h: recurrent layers, as torch.nn.LSTM and torch.nn.GRU.
 *
 * Same parameters, names, shapes, gate order and state_dict order as PyTorch, so weights move
 * between the two unchanged: for layer k and direction suffix s ("" forward, "_reverse" backward)
 * "weight_ih_l<k><s>" [G*H, in], "weight_hh_l<k><s>" [G*H, H], "bias_ih_l<k><s>" [G*H] and
 * "bias_hh_l<k><s>" [G*H], G = 4 gates (i, f, g, o) for LSTM and 3 (r, z, n) for GRU; in = the
 * input size for layer 0 and D*H above (D = 2 when bidirectional).  All initialised
 * U(-1/sqrt(H), 1/sqrt(H)) from the default generator, in that order, as torch.
 *
 *   LSTM: i = sig(W_ii x + b_ii + W_hi h + b_hi), f = sig(..f..), g = tanh(..g..), o = sig(..o..),
 *         c' = f * c + i * g,  h' = o * tanh(c')
 *   GRU:  r = sig(W_ir x + b_ir + W_hr h + b_hr), z = sig(..z..),
 *         n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h
 *
 * The input projections of all time steps are one GEMM per layer and direction; each step is one
 * GEMM with W_hh and a few elementwise ops, recorded by autograd like any composed code, so the
 * layers run and train on every device.  Not supported: proj_size (LSTM with projections) and
 * packed sequences (pad and use the outputs up to each length instead). */
#ifndef AQA_NN_RNN_H
#define AQA_NN_RNN_H

#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The constructor arguments of torch.nn.LSTM / torch.nn.GRU (proj_size excepted). */
typedef struct aqa_rnn_config {
    int64_t input_size;  /* features of the input x */
    int64_t hidden_size; /* H: features of the hidden state */
    int num_layers;      /* stacked layers (torch default 1) */
    bool bias;           /* bias_ih / bias_hh present (default true) */
    bool batch_first;    /* x and output [N, L, .] instead of [L, N, .] (default false; never the states) */
    double dropout;      /* dropout on the outputs of every layer but the last, training only (0) */
    bool bidirectional;  /* a second, reversed direction per layer (default false) */
} aqa_rnn_config;

/* torch's defaults for the two sizes. */
aqa_rnn_config aqa_rnn_config_default(int64_t input_size, int64_t hidden_size);

typedef enum aqa_rnn_mode {
    AQA_RNN_LSTM, /* 4 gates, hidden and cell state */
    AQA_RNN_GRU   /* 3 gates, hidden state only */
} aqa_rnn_mode;

typedef struct aqa_rnn_layer {
    aqa_module base;      /* type "LSTM" or "GRU" */
    aqa_rnn_mode mode;    /* which cell */
    aqa_rnn_config cfg;   /* as built */
    int num_directions;   /* D: 2 when bidirectional, else 1 */
    /* per (layer, direction) in state_dict order, 4 entries each: weight_ih, weight_hh, bias_ih,
     * bias_hh (the biases NULL without bias); borrowed from base, malloc'd array */
    aqa_tensor **params;
    aqa_generator *gen;   /* dropout generator (borrowed), NULL = the default one */
} aqa_rnn_layer;
typedef aqa_rnn_layer aqa_lstm_layer;
typedef aqa_rnn_layer aqa_gru_layer;

aqa_rnn_layer *aqa_lstm_layer_new(aqa_module *parent, const char *name, const aqa_rnn_config *cfg);
aqa_rnn_layer *aqa_gru_layer_new(aqa_module *parent, const char *name, const aqa_rnn_config *cfg);

/* The parameter `which` (0 weight_ih, 1 weight_hh, 2 bias_ih, 3 bias_hh) of a layer and direction
 * (1 = reverse), or NULL. */
aqa_tensor *aqa_rnn_param(const aqa_rnn_layer *m, int layer, int direction, int which);

/* x [L, N, in] ([N, L, in] if batch_first; [L, in] unbatched).  h0, c0 [D*num_layers, N, H]
 * ([D*num_layers, H] unbatched; never batch-first), or NULL for zeros.  Returns the last layer's
 * hidden states of every step, [L, N, D*H] (the forward direction's first), in x's layout; when
 * h_n / c_n are not NULL they receive the final states [D*num_layers, N, H] (layer-major, the
 * reverse direction's state being the one after reading step 0), as torch. */
aqa_tensor *aqa_lstm_layer_forward(aqa_rnn_layer *m, aqa_tensor *x, aqa_tensor *h0, aqa_tensor *c0,
                                   aqa_tensor **h_n, aqa_tensor **c_n);
/* GRU: as above without the cell state. */
aqa_tensor *aqa_gru_layer_forward(aqa_rnn_layer *m, aqa_tensor *x, aqa_tensor *h0, aqa_tensor **h_n);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_RNN_H */
