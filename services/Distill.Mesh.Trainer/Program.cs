using Distill.Mesh.ServiceDefaults;
using Distill.Mesh.Trainer.Extensions;

var builder = WebApplication.CreateBuilder(args);
builder.AddTrainerService();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapTrainerService();
app.Run();
