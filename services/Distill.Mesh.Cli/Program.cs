using Distill.Mesh.Cli;

return await DistillCommand.Create().Parse(args).InvokeAsync();
