"""minimoe: a small, readable, fast Mixture-of-Experts language model for a break-it lab course.

Shape legend (tensor names carry their shape as a suffix, as in torchtitan):

    B  batch (sequences)          S  positions in a window (context)
    T  tokens in a batch, B*S     D  width of the residual stream
    E  routed experts             K  experts per token (top-k)
    F  hidden width of an expert  V  vocabulary size
    A  assignments, T*K (token, expert) pairs, sorted by expert
    N  the tokens one expert got
    C  rows per expert in a padded layout: the busiest expert's count (perf/)
    R  rows of a layout, padding included: A when ragged, E*C when padded (perf/)

e.g. logits_TE are the router's scores, one per token and expert; ids_TK the K experts each
token visits; end_E where each expert's rows end. Modules: see README.md. Imports run one way
(config <- router, experts <- capacity <- moe_block <- perf <- model <- train <- the rest); the course engine
lives in minimoe.course, and the model package never imports it.
"""

__version__ = "0.1.0"
