-- lucid.nn.activation: placeholder until the family lands.
return function(nn, P) end
