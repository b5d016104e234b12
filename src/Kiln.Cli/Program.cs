System.Console.WriteLine(Kiln.Graph.DType.F32);
