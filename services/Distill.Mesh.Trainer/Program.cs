using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Trainer.Extensions;

// Before libtorch loads (its OpenMP runtime reads the wait policy once).
Distill.Mesh.Modeling.Runtime.OpenMpWaitPolicy.PreferPassive();
var builder = WebApplication.CreateBuilder(args);
builder.AddTrainerService();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapTrainerService();
app.Run();
