"""The weight-sharing supernet and the plain networks it yields: ops, layers (batch norm,
initialisation, masks), the elastic `Supernet` and its `Layout`, the static `SpecNet`, a subnet
as a `SpecNet` with inherited weights, and which subnet an ArchSpec is."""
