namespace Distill.Mesh.Training.Tests.Recipes;

/// <summary>Runs seed torch's global RNG (dropout draws from it): tests that train run alone, not beside each other.</summary>
[CollectionDefinition(nameof(GlobalRandomState), DisableParallelization = true)]
public sealed class GlobalRandomState;
