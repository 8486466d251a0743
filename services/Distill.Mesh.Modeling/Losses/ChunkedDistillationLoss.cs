using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Mesh.Modeling.Losses;

/// <summary>
/// The distillation loss with the student's output projection fused in and computed a block of
/// positions at a time: for each block, logits = hidden·Wᵀ, the loss and its gradient with respect
/// to those logits (by autograd on the block alone), then dHidden and dW accumulate and the
/// block's logits are freed. The whole [N × V] logits and their gradient never exist at once;
/// memory is one block's [B × V] plus dHidden [N × H] and dW [V × H]. Backward only scales the
/// saved gradients, so nothing is recomputed. Value and gradients equal the plain path.
/// </summary>
public static class ChunkedDistillationLoss
{
    /// <param name="hidden">Student final hidden states [N, H] (aligned with labels: shift first).</param>
    /// <param name="outputWeight">Student output projection [V, H] (lm_head, or tied embeddings).</param>
    /// <param name="teacher">Teacher targets per block, or null for plain cross-entropy.</param>
    /// <param name="labels">[N], <c>ignore_index</c> where no loss is taken.</param>
    /// <param name="options">Loss options.</param>
    /// <param name="normalizer">Divide sums by this (the optimizer step's valid tokens); default: this call's valid tokens.</param>
    /// <param name="blockSize">Positions per block; default: about 2²³ logits per block (see <see cref="DefaultBlockSize"/>).</param>
    /// <param name="groupElements">Logit-gradient values gathered before folding them into dW (default 2²⁷).</param>
    public static LossParts Compute(Tensor hidden, Tensor outputWeight, ITeacherRows? teacher, Tensor labels, DistillationLossOptions options, double? normalizer = null, int? blockSize = null, long groupElements = DefaultGroupElements)
    {
        options.Validate();
        var block = blockSize ?? DefaultBlockSize(outputWeight.shape[0]);
        ArgumentOutOfRangeException.ThrowIfLessThan(block, 1);
        if (hidden.dim() != 2 || outputWeight.dim() != 2 || hidden.shape[1] != outputWeight.shape[1])
            throw new ArgumentException($"hidden [{string.Join(", ", hidden.shape)}] and output weight [{string.Join(", ", outputWeight.shape)}] do not fit ([N, H] and [V, H])");
        if (labels.shape[0] != hidden.shape[0] || (teacher is not null && teacher.Rows != hidden.shape[0]))
            throw new ArgumentException($"labels ({labels.shape[0]}) and teacher ({teacher?.Rows}) must cover the {hidden.shape[0]} positions");

        var denominator = Math.Max(1.0, normalizer ?? labels.ne(options.IgnoreIndex).sum().item<long>());
        var parts = new double[2];
        ArgumentOutOfRangeException.ThrowIfLessThan(groupElements, 1);
        var total = FusedFunction.apply(hidden, outputWeight, labels, new Request(teacher, options, denominator, block, groupElements, parts));
        return new LossParts(total, torch.tensor(parts[0], device: total.device), torch.tensor(parts[1], device: total.device));
    }

    /// <summary>
    /// Positions per block so that a block's float32 logits stay near 32 MiB (2²³ values): the
    /// loss keeps several such tensors alive per block, and the block, not the batch, sets the peak.
    /// </summary>
    public static int DefaultBlockSize(long vocabulary) => (int)Math.Clamp((1L << 23) / Math.Max(1, vocabulary), 8, 2048);

    /// <summary>Logit-gradient values gathered before they are folded into dW (256 MiB in bf16).</summary>
    public const long DefaultGroupElements = 1L << 27;

    private sealed record Request(ITeacherRows? Teacher, DistillationLossOptions Options, double Denominator, int BlockSize, long GroupElements, double[] Parts);

    private sealed class FusedFunction : autograd.SingleTensorFunction<FusedFunction>
    {
        public override string Name => "ChunkedDistillationLoss";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (hidden, weight, labels, request) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Request)vars[3]);
            var options = request.Options;
            var ratio = request.Teacher is null ? 0.0 : options.KdRatio;
            var rows = hidden.shape[0];
            var accumulate = hidden.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
            var gradHidden = torch.zeros_like(hidden);
            var gradWeight = weight.requires_grad ? torch.zeros(weight.shape, dtype: accumulate, device: weight.device) : null;
            // dW = Σ gᵀ·h. One V × H update per block would be slow (a weight-sized temporary each
            // time), so the blocks' logit gradients gather in a bounded buffer and are folded in with
            // one large matmul per group of blocks.
            var groupRows = Math.Max(1, request.GroupElements / weight.shape[0] / request.BlockSize) * request.BlockSize;
            using var group = gradWeight is null ? null : torch.zeros(Math.Min(groupRows, rows), weight.shape[0], dtype: weight.dtype, device: weight.device);
            long groupStart = 0, groupFill = 0;
            double kdSum = 0, ceSum = 0;

            for (long start = 0; start < rows; start += request.BlockSize)
            {
                using var scope = torch.NewDisposeScope();
                var length = Math.Min(request.BlockSize, rows - start);
                var blockLabels = labels.narrow(0, start, length);
                var valid = blockLabels.ne(options.IgnoreIndex);
                var blockGrad = group?.narrow(0, groupFill, length);
                if (valid.any().item<bool>())
                {
                    var blockHidden = hidden.narrow(0, start, length);
                    var target = request.Teacher?.Block(start, length);
                    var logits = blockHidden.matmul(weight.t()).to_type(accumulate);
                    var (gradLogits, kd, ce) = ClosedFormBlockLoss.Supports(target, options)
                        ? ClosedFormBlockLoss.Compute(logits, blockLabels, valid, target, options, ratio, request.Denominator)
                        : ByAutograd(logits, blockLabels, valid, target, options, ratio, request.Denominator);
                    kdSum += kd;
                    ceSum += ce;

                    // The gradient matmuls run in the weights' dtype, as the plain path's backward does
                    // (bf16 matmuls are several times faster on CPUs with AMX).
                    var gradLogitsLow = gradLogits.to_type(weight.dtype);
                    gradHidden.narrow(0, start, length).copy_(gradLogitsLow.matmul(weight));
                    blockGrad?.copy_(gradLogitsLow);
                }
                else
                {
                    blockGrad?.zero_();
                }

                groupFill += length;
                if (gradWeight is not null && (groupFill == group!.shape[0] || start + length == rows))
                {
                    using var fold = torch.NewDisposeScope();
                    var contribution = group.narrow(0, 0, groupFill).t().matmul(hidden.narrow(0, groupStart, groupFill).to_type(weight.dtype));
                    gradWeight.add_(contribution);
                    groupStart += groupFill;
                    groupFill = 0;
                }
            }

            request.Parts[0] = kdSum / request.Denominator;
            request.Parts[1] = ceSum / request.Denominator;
            var total = ((1 - ratio) * ceSum + ratio * kdSum) / request.Denominator;
            ctx.save_for_backward([gradHidden, gradWeight ?? torch.empty(0)]);
            ctx.save_data("weight_grad", gradWeight is not null);
            ctx.save_data("weight_dtype", weight.dtype);
            return torch.tensor(total, dtype: accumulate, device: hidden.device);
        }

        /// <summary>Any other loss or target: the block's gradient by autograd on the block alone.</summary>
        private static (Tensor GradLogits, double Kd, double Ce) ByAutograd(Tensor blockLogits, Tensor labels, Tensor valid, TeacherTarget? target, DistillationLossOptions options, double ratio, double denominator)
        {
            using var grad = torch.enable_grad();
            var logits = blockLogits.detach().requires_grad_();
            var ce = DistillationLoss.HardCrossEntropy(logits, labels, options.IgnoreIndex).sum();
            var kd = target is null
                ? torch.zeros_like(ce)
                : torch.where(valid, DistillationLoss.PerPosition(logits, target, options), torch.zeros_like(ce)).sum();
            var loss = ((1 - ratio) * ce + ratio * kd) / denominator;
            var gradLogits = torch.autograd.grad([loss], [logits])[0];
            return (gradLogits, kd.to_type(ScalarType.Float64).item<double>(), ce.to_type(ScalarType.Float64).item<double>());
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var scale = gradOutput.to_type(saved[0].dtype);
            // The loss is almost always the root (gradient exactly 1): skip a weight-sized product then.
            var unit = gradOutput.to_type(ScalarType.Float64).item<double>() == 1.0;
            var weightGrad = (bool)ctx.get_data("weight_grad")
                ? (unit ? saved[1] : saved[1] * gradOutput.to_type(saved[1].dtype)).to_type((ScalarType)ctx.get_data("weight_dtype"))
                : null;
            // One entry per argument of apply, tensors or not: hidden, weight, labels, request.
            return [unit ? saved[0] : saved[0] * scale, weightGrad!, null!, null!];
        }
    }
}
