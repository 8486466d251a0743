namespace Distill.Mesh.Training.Recipes;

/// <summary>The parts of a training step that <see cref="StepTimings"/> tells apart.</summary>
public enum StepPhase
{
    /// <summary>Collating the step's micro-batches onto the device.</summary>
    Data,

    /// <summary>The teacher's forward pass, including its output projection (which the chunked loss asks for block by block).</summary>
    TeacherForward,

    /// <summary>The student's forward pass up to its final hidden states.</summary>
    StudentForward,

    /// <summary>The loss; the chunked loss also computes the output projection's gradients here.</summary>
    Loss,

    /// <summary>Backward through the student's body.</summary>
    Backward,

    /// <summary>Gradient clipping, the optimizer's update and clearing the gradients.</summary>
    Optimizer,
}
